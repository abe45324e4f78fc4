import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
	ApiError,
	api,
	clearSession,
	loadCapabilities,
	loadSession,
	saveSession,
	type Capabilities,
	type Session
} from "./api";
import { ErrorNotice, Loading, TextField } from "./common";
import { bindApi, Console, href, newSessionMemory, useLive, useRoute, type ConsoleContext } from "./context";
import { LiveFeed } from "./live";
import { CatalogView } from "./views/catalog";
import { EventsView } from "./views/events";
import { KeysView } from "./views/keys";
import { SourcesView } from "./views/sources";
import { TasksView } from "./views/tasks";
import { ToolEditorView } from "./views/tool-editor";
import { ToolView } from "./views/tool";

export function App() {
	const [session, setSession] = useState<Session | null>(loadSession);
	const [capabilities, setCapabilities] = useState<Capabilities | null>(null);
	useEffect(() => {
		if (session) void loadCapabilities().then(setCapabilities);
	}, [session]);
	if (!session)
		return (
			<SignIn
				onSignedIn={signed => {
					saveSession(signed);
					setSession(signed);
				}}
			/>
		);
	if (!capabilities) return <Loading />;
	return (
		<Shell
			session={session}
			capabilities={capabilities}
			onSignOut={() => {
				clearSession();
				// The next sign-in starts at the catalog, not in the view the previous identity left.
				history.replaceState(null, "", location.pathname);
				setSession(null);
				setCapabilities(null);
			}}
		/>
	);
}

function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
	const [credential, setCredential] = useState("");
	const [tenant, setTenant] = useState("");
	const [error, setError] = useState<unknown>(null);
	const [busy, setBusy] = useState(false);

	const submit = async (event: Event) => {
		event.preventDefault();
		const session = { credential: credential.trim(), tenant: tenant.trim() || null };
		setBusy(true);
		setError(null);
		try {
			await api(session, "GET", "/tools?limit=1");
			onSignedIn(session);
		} catch (err) {
			// A key without tools:read is still a valid key (e.g. one that only manages keys).
			if (err instanceof ApiError && err.errorName === "LacksScopeError")
				onSignedIn({ ...session, reads: false });
			else setError(err);
		} finally {
			setBusy(false);
		}
	};

	return (
		<main class="signin">
			<form class="card" onSubmit={submit} aria-labelledby="signin-title">
				<h1 id="signin-title">Tool Registry console</h1>
				<p class="muted">
					Sign in with an API key, or with the service token and the tenant to act for. They are kept in this
					tab's session storage only.
				</p>
				<div class="field">
					<label for="signin-credential">API key or service token</label>
					<input
						id="signin-credential"
						type="password"
						autoComplete="off"
						required
						value={credential}
						onInput={event => setCredential((event.currentTarget as HTMLInputElement).value)}
					/>
				</div>
				<TextField
					id="signin-tenant"
					label="Tenant"
					hint="Required with the service token; an API key already knows its tenant."
					autoComplete="off"
					value={tenant}
					onInput={setTenant}
				/>
				<ErrorNotice error={error} title="Could not sign in" />
				<button type="submit" disabled={busy}>
					{busy ? "Signing in…" : "Sign in"}
				</button>
			</form>
		</main>
	);
}

const VIEWS = [
	{ route: "catalog", label: "Catalog" },
	{ route: "register", label: "Register" },
	{ route: "tasks", label: "Tasks" },
	{ route: "events", label: "Events" },
	{ route: "keys", label: "Keys" },
	{ route: "sources", label: "Sources" }
];

function Shell({
	session,
	capabilities,
	onSignOut
}: {
	session: Session;
	capabilities: Capabilities;
	onSignOut: () => void;
}) {
	const live = useMemo(() => new LiveFeed(session), [session]);
	useEffect(() => () => live.close(), [live]);
	const context: ConsoleContext = useMemo(
		() => ({ session, capabilities, live, memory: newSessionMemory(), call: bindApi(session) }),
		[session, capabilities, live]
	);
	return (
		<Console.Provider value={context}>
			<div class="shell">
				<a class="skip-link" href="#main" onClick={skipToContent}>
					Skip to content
				</a>
				<header class="topbar">
					<a class="brand" href={href("catalog")}>
						Tool Registry
					</a>
					<LiveIndicator />
					<span class="identity" title="Tenant">
						{session.tenant ?? "API key"}
					</span>
					<button type="button" class="secondary" onClick={onSignOut}>
						Sign out
					</button>
				</header>
				<Navigation />
				<main class="content" id="main">
					<Router />
				</main>
			</div>
		</Console.Provider>
	);
}

/** Focuses the view's heading, if it is there and shown yet. */
function focusHeading(main: HTMLElement): boolean {
	const heading = main.querySelector<HTMLElement>("h1");
	if (!heading) return false;
	heading.tabIndex = -1;
	heading.focus({ preventScroll: true });
	return document.activeElement === heading;
}

/** The hash is the router's, so the skip link moves focus itself. */
function skipToContent(event: Event) {
	event.preventDefault();
	const main = document.getElementById("main");
	if (main) {
		main.tabIndex = -1;
		main.focus();
	}
}

function LiveIndicator() {
	const live = useLive();
	const label = {
		connecting: "Connecting…",
		open: "Live",
		closed: "Offline, retrying",
		off: "No live feed (needs tools:read)"
	}[live.state];
	return (
		<span class={`live live-${live.state}`} role="status" aria-live="polite">
			{label}
		</span>
	);
}

function Navigation() {
	const [current] = useRoute();
	const active = current === "tools" ? "catalog" : (current ?? "catalog");
	return (
		<nav class="sidebar" aria-label="Console">
			<ul>
				{VIEWS.map(view => (
					<li key={view.route}>
						<a href={href(view.route)} aria-current={active === view.route ? "page" : undefined}>
							{view.label}
						</a>
					</li>
				))}
			</ul>
		</nav>
	);
}

function Router() {
	const [view, id, sub] = useRoute();
	const first = useRef(true);
	// After navigating, focus goes to the new view's heading, so keyboard and screen reader users start
	// there; a view that loads first (a tool) gets it once its heading appears.
	useEffect(() => {
		if (first.current) return void (first.current = false);
		scrollTo(0, 0);
		const main = document.getElementById("main");
		if (!main || focusHeading(main)) return;
		const observer = new MutationObserver(() => {
			const active = document.activeElement;
			// Focus the user has moved meanwhile stays where they put it.
			const idle = !active || active === document.body || active.closest("nav, main");
			if (!idle || focusHeading(main)) observer.disconnect();
		});
		// A view shown once its parts have loaded (a tool) reveals its heading by changing a class.
		observer.observe(main, { childList: true, subtree: true, attributes: true, attributeFilter: ["class"] });
		return () => observer.disconnect();
	}, [view, id, sub]);
	// Each route mounts its view afresh: Register after Edit (one component) must not keep the tool
	// being edited, nor one tool's page the run shown on another's.
	const key = [view, id, sub].join("/");
	switch (view) {
		case "tools":
			if (id && sub === "edit") return <ToolEditorView key={key} toolId={id} />;
			if (id) return <ToolView key={key} toolId={id} />;
			return <CatalogView />;
		case "register":
			return <ToolEditorView key={key} />;
		case "tasks":
			return <TasksView />;
		case "events":
			return <EventsView />;
		case "keys":
			return <KeysView />;
		case "sources":
			return <SourcesView />;
		case "catalog":
		case undefined:
			return <CatalogView />;
		default:
			return <ErrorNotice error={new Error(`There is no view "${view}".`)} title="Not found" />;
	}
}
