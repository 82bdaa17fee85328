import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "crds/", "deploy/", "coverage/", ".understudy/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    // Reconcilers and the runtime keep no state of their own at module level: what lives as long as
    // an operator belongs on its context (src/controllers/context.ts) or on the object that owns it,
    // so two operators in one process, or a test, never share it. (derived.ts's memo tables are
    // keyed weakly by the objects they derive from: a speed-up that no result depends on.)
    files: ["src/controllers/**/*.ts", "src/operator/**/*.ts"],
    rules: {
      "no-restricted-syntax": [
        "error",
        ...moduleStateSelectors().map((selector) => ({
          selector,
          message: "No module-level mutable state here: put it on the controller context.",
        })),
      ],
    },
  },
);

function moduleStateSelectors() {
  const topLevel = [
    "Program > VariableDeclaration",
    "Program > ExportNamedDeclaration > VariableDeclaration",
  ];
  const collection = "NewExpression[callee.name=/^(Map|Set|WeakMap|WeakSet|Array)$/]";
  const init = [collection, `TSAsExpression > ${collection}`, `TSSatisfiesExpression > ${collection}`];
  return [
    ...topLevel.map((declaration) => `${declaration}[kind=/^(let|var)$/]`),
    ...topLevel.flatMap((declaration) =>
      init.map((value) => `${declaration} > VariableDeclarator > ${value}.init`),
    ),
    "PropertyDefinition[static=true][readonly!=true]",
  ];
}
