import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));

/**
 * The console bundle: served by the gateway at /ui from dist/console, so every asset is local
 * (no CDN) and the page needs no inline script (the Content-Security-Policy forbids them).
 */
export default defineConfig({
	root,
	base: "/ui/",
	publicDir: "public",
	build: {
		outDir: fileURLToPath(new URL("../dist/console", import.meta.url)),
		emptyOutDir: true,
		// Vite would inline small assets as data: URLs; keeping them files keeps the policy simple.
		assetsInlineLimit: 0,
		modulePreload: { polyfill: false },
		reportCompressedSize: false
	}
});
