// Type-aware lint of the TypeScript tree; formatting is Prettier's (npm run lint runs both).
import tseslint from "typescript-eslint";

export default tseslint.config(
	{ ignores: ["dist/", "coverage/", "node_modules/", "ui/", "**/*.js", "**/*.mjs"] },
	{
		files: ["**/*.ts"],
		extends: [tseslint.configs.base],
		languageOptions: {
			parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname }
		},
		rules: {
			// A promise nobody awaits loses its error (an unhandled rejection) and its ordering.
			"@typescript-eslint/no-floating-promises": "error",
			// A promise where a boolean or a void callback is expected is always truthy / never awaited.
			"@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }],
			"@typescript-eslint/await-thenable": "error",
			"@typescript-eslint/no-for-in-array": "error",
			"@typescript-eslint/only-throw-error": "error",
			"@typescript-eslint/no-non-null-asserted-optional-chain": "error",
			"@typescript-eslint/no-duplicate-enum-values": "error",
			"no-var": "error",
			"prefer-const": "error",
			eqeqeq: ["error", "always", { null: "ignore" }]
		}
	}
);
