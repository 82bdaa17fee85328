/** The HTTP status of a failed API call, if the API server answered at all. */
export function statusCode(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "number") return code;
  const status = (err as { statusCode?: unknown }).statusCode;
  return typeof status === "number" ? status : undefined;
}

export const isNotFound = (err: unknown) => statusCode(err) === 404;
/** A compare-and-swap lost: someone else changed the object since we read it. */
export const isConflict = (err: unknown) => statusCode(err) === 409;
export const isGone = (err: unknown) => statusCode(err) === 410;
/** The API server judged the request itself and said no (bad, forbidden or invalid): retrying the same request cannot help. */
export const isRefusal = (err: unknown) => [400, 403, 422].includes(statusCode(err) ?? 0);

/** The server's message for a failed call (the Status body's `message`), else the error's own. */
export function errorMessage(err: unknown): string {
  if (typeof err === "object" && err !== null) {
    const body = (err as { body?: unknown }).body;
    if (typeof body === "string") {
      try {
        const parsed = JSON.parse(body) as { message?: string };
        if (parsed.message) return parsed.message;
      } catch {
        return body;
      }
    } else if (typeof body === "object" && body !== null && "message" in body) {
      return String((body as { message: unknown }).message);
    }
    if (err instanceof Error) return err.message;
  }
  return String(err);
}
