import { createContext } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import { api, type Capabilities, type Session } from "./api";
import type { LiveFeed } from "./live";
import type { ApiKey, Task } from "./types";

/** A task the Tasks view follows. */
export interface WatchedTask {
	task: Task;
	toolName: string;
	executionMs?: number;
	message?: string;
}

/**
 * What the console remembers between views for one sign-in (not stored anywhere): signing out
 * drops it, so the next identity in the tab never sees it.
 */
export interface SessionMemory {
	/** Tasks submitted or looked up, newest first. */
	tasks: WatchedTask[];
	/** Keys created: listed even when the server cannot list keys. */
	keysCreated: ApiKey[];
	/** Keys revoked: still shown (as revoked) when the server's list leaves them out. */
	keysRevoked: Map<string, ApiKey>;
}

export const newSessionMemory = (): SessionMemory => ({ tasks: [], keysCreated: [], keysRevoked: new Map() });

export interface ConsoleContext {
	session: Session;
	capabilities: Capabilities;
	live: LiveFeed;
	memory: SessionMemory;
	/** `api` bound to the session. */
	call: <T = unknown>(method: string, path: string, body?: unknown) => Promise<T>;
}

export const Console = createContext<ConsoleContext | null>(null);

export function useConsole(): ConsoleContext {
	const context = useContext(Console);
	if (!context) throw new Error("useConsole outside the signed-in console");
	return context;
}

export const bindApi =
	(session: Session) =>
	<T = unknown>(method: string, path: string, body?: unknown) =>
		api<T>(session, method, path, body);

/** Re-renders the caller on every change of the live feed (state or new frame). */
export function useLive(): LiveFeed {
	const { live } = useConsole();
	const [, setTick] = useState(0);
	useEffect(() => {
		const unsubscribe = live.onChange(() => setTick(t => t + 1));
		// The feed connects as soon as it exists: a change before this subscription is caught up here.
		setTick(t => t + 1);
		return unsubscribe;
	}, [live]);
	return live;
}

/** The current hash route, e.g. `#/tools/abc` → ["tools", "abc"]. */
export function useRoute(): string[] {
	const read = () =>
		location.hash
			.replace(/^#\/?/, "")
			.split("/")
			.filter(Boolean)
			.map(part => decodeURIComponent(part));
	const [route, setRoute] = useState(read);
	useEffect(() => {
		const onChange = () => setRoute(read());
		addEventListener("hashchange", onChange);
		return () => removeEventListener("hashchange", onChange);
	}, []);
	return route;
}

export const href = (...parts: string[]) => `#/${parts.map(encodeURIComponent).join("/")}`;
