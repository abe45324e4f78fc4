/**
 * Headers of the pages the gateway serves to browsers (`/ui`, `/docs`): a Content-Security-Policy of
 * the page's own, and the same-origin, no-sniffing and no-referrer rules for every one of them.
 */
export function pageHeaders(contentSecurityPolicy: string): Record<string, string> {
	return {
		"Content-Security-Policy": contentSecurityPolicy,
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy": "no-referrer",
		"Cross-Origin-Opener-Policy": "same-origin",
		"Cross-Origin-Resource-Policy": "same-origin"
	};
}
