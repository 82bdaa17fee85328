// The certificates of a storage service: a CA the operator keeps per service, and the serving
// certificate its heads and servers present, issued with @peculiar/x509 over WebCrypto (ECDSA
// P-256, SHA-256). Pure apart from key generation and signing: no Kubernetes here.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { randomBytes, webcrypto } from "node:crypto";

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const { subtle } = webcrypto;
type CryptoKey = webcrypto.CryptoKey;

export interface KeyPairPem {
  /** The certificate, PEM. */
  readonly cert: string;
  /** Its private key, PKCS#8 PEM. */
  readonly key: string;
}

export interface CertificateInfo {
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly serialNumber: string;
  readonly issuer: string;
}

export interface ServingRequest {
  readonly commonName: string;
  readonly dnsNames: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** A positive serial number of 16 random bytes (RFC 5280: at most 20, positive). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString("hex");
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = await subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

async function importKey(pem: string): Promise<CryptoKey> {
  return subtle.importKey("pkcs8", x509.PemConverter.decodeFirst(pem), ALGORITHM, true, ["sign"]);
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
}

/** A self-signed CA that may sign end-entity certificates only (path length 0). */
export async function createCa(commonName: string, notBefore: Date, notAfter: Date): Promise<KeyPairPem> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ CN: [commonName] }],
    notBefore,
    notAfter,
    signingAlgorithm: ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString("pem"), key: await exportKey(keys.privateKey) };
}

/** A serving certificate (TLS server and client use) for the names given, signed by `ca`. */
export async function issueServing(ca: KeyPairPem, request: ServingRequest): Promise<KeyPairPem> {
  const caCert = new x509.X509Certificate(ca.cert);
  const keys = await generateKeys();
  const names = [
    ...request.dnsNames.map((value) => ({ type: "dns" as const, value })),
    ...(request.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: [{ CN: [request.commonName] }],
    issuer: caCert.subjectName,
    notBefore: request.notBefore,
    notAfter: request.notAfter,
    signingAlgorithm: ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: await importKey(ca.key),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([
        x509.ExtendedKeyUsage.serverAuth,
        x509.ExtendedKeyUsage.clientAuth,
      ]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { cert: cert.toString("pem"), key: await exportKey(keys.privateKey) };
}

/** What the operator needs to know of a certificate to decide on its renewal. */
export function certificateInfo(pem: string): CertificateInfo {
  const cert = new x509.X509Certificate(pem);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.items ?? [];
  return {
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    dnsNames: names.filter((n) => n.type === "dns").map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === "ip").map((n) => n.value),
    serialNumber: cert.serialNumber,
    issuer: cert.issuer,
  };
}

/** Whether `cert` was signed by `ca` (its issuer's key), checked cryptographically. */
export async function signedBy(cert: string, ca: string): Promise<boolean> {
  const caCert = new x509.X509Certificate(ca);
  return new x509.X509Certificate(cert).verify({ publicKey: caCert.publicKey, signatureOnly: true });
}
