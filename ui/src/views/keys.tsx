import { useState } from "preact/hooks";
import {
	CopyButton,
	Empty,
	ErrorNotice,
	Loading,
	TableHead,
	TextField,
	Time,
	Unavailable,
	useLoad
} from "../common";
import { useConsole } from "../context";
import { SCOPES, type ApiKey, type Page } from "../types";

/** Create API keys (the secret is shown once), list them with their last use, revoke them. */
export function KeysView() {
	const { call, capabilities, session, memory } = useConsole();
	const { keysCreated: createdHere, keysRevoked: revokedHere } = memory;
	const listed = useLoad(
		() =>
			capabilities.keysList
				? call<Page<ApiKey>>("GET", "/keys").then(page => page.items)
				: Promise.resolve(null),
		[]
	);
	const [name, setName] = useState("");
	const [tenant, setTenant] = useState(session.tenant ?? "");
	const [agent, setAgent] = useState("");
	const [scopes, setScopes] = useState<string[]>(["tools:read"]);
	const [created, setCreated] = useState<ApiKey | null>(null);
	const [error, setError] = useState<unknown>(null);
	const [revokeError, setRevokeError] = useState<unknown>(null);
	const [, setTick] = useState(0);

	// An API key acts for one tenant, which its list of keys shows: offered as a placeholder, never
	// written into the field, so a list that arrives while the user types cannot change what they typed.
	const listedTenant = listed.data?.[0]?.tenant_id ?? "";
	const tenantOfKeys = tenant || listedTenant;

	const create = async (event: Event) => {
		event.preventDefault();
		setError(null);
		try {
			const key = await call<ApiKey>("POST", "/keys", {
				tenant_id: tenantOfKeys,
				scopes,
				...(name.trim() ? { name: name.trim() } : {}),
				...(agent.trim() ? { agent_id: agent.trim() } : {})
			});
			createdHere.unshift({ ...key, api_key: undefined });
			setCreated(key);
			setName("");
			setAgent("");
			listed.reload();
		} catch (err) {
			setError(err);
		}
	};

	const revoke = async (key: ApiKey) => {
		if (!confirm(`Revoke the key ${key.name ?? key.key_id}? Anything using it stops working at once.`))
			return;
		setRevokeError(null);
		try {
			await call("DELETE", `/keys/${encodeURIComponent(key.key_id)}`);
			revokedHere.set(key.key_id, { ...key, revoked_at: new Date().toISOString() });
			setTick(t => t + 1);
			listed.reload();
		} catch (err) {
			setRevokeError(err);
		}
	};

	// From the latest state: two clicks before a re-render must both count.
	const toggle = (scope: string) =>
		setScopes(current =>
			current.includes(scope) ? current.filter(item => item !== scope) : [...current, scope]
		);

	// The server's list when it has one, else the keys made in this tab; keys revoked here stay visible.
	const current = (listed.data ?? createdHere).map(key => revokedHere.get(key.key_id) ?? key);
	const keys = [
		...current,
		...[...revokedHere.values()].filter(key => !current.some(item => item.key_id === key.key_id))
	];

	return (
		<section aria-labelledby="keys-title">
			<h1 id="keys-title">API keys</h1>
			{created?.api_key && (
				<div class="notice secret" role="alert">
					<strong>Copy the new key now: it is not shown again.</strong>
					<p>
						<code class="secret-value" data-testid="new-key-secret">
							{created.api_key}
						</code>
					</p>
					<div class="button-row">
						<CopyButton text={created.api_key} />
						<button type="button" class="secondary" onClick={() => setCreated(null)}>
							I have stored it
						</button>
					</div>
				</div>
			)}
			<form class="panel" onSubmit={create} aria-labelledby="create-key-title">
				<h2 id="create-key-title">Create a key</h2>
				<div class="form-fields">
					<div class="field">
						<label for="key-name">Name</label>
						<input
							id="key-name"
							type="text"
							maxLength={128}
							value={name}
							onInput={event => setName((event.currentTarget as HTMLInputElement).value)}
						/>
					</div>
					<div class="field">
						<label for="key-tenant">Tenant</label>
						<input
							id="key-tenant"
							type="text"
							required={!listedTenant}
							placeholder={listedTenant}
							value={tenant}
							onInput={event => setTenant((event.currentTarget as HTMLInputElement).value)}
						/>
					</div>
					<TextField
						id="key-agent"
						label="Agent (optional)"
						hint="A key bound to an agent acts only as that agent."
						value={agent}
						onInput={setAgent}
					/>
					<fieldset class="nested">
						<legend>Scopes</legend>
						{SCOPES.map(scope => (
							<div class="field checkbox" key={scope}>
								<input
									id={`key-scope-${scope}`}
									type="checkbox"
									checked={scopes.includes(scope)}
									onChange={() => toggle(scope)}
								/>
								<label for={`key-scope-${scope}`}>{scope}</label>
							</div>
						))}
					</fieldset>
				</div>
				<ErrorNotice error={error} title="The key was not created" />
				<button type="submit" disabled={scopes.length === 0}>
					Create key
				</button>
			</form>
			<h2>{capabilities.keysList ? "Keys of the tenant" : "Keys created in this session"}</h2>
			{!capabilities.keysList && (
				<Unavailable what="listing of keys (only keys made in this tab are shown)" />
			)}
			<ErrorNotice error={listed.error} title="Could not list the keys" />
			<ErrorNotice error={revokeError} title="Could not revoke the key" />
			{listed.loading && !listed.data && capabilities.keysList ? (
				<Loading />
			) : keys.length === 0 ? (
				<Empty>No keys yet.</Empty>
			) : (
				<div class="table-wrap stack">
					<table>
						<TableHead columns={["Name", "Key id", "Scopes", "Agent", "Created", "Last used"]} />
						<tbody>
							{keys.map(key => (
								<tr key={key.key_id} data-key-id={key.key_id}>
									<td data-label="Name">{key.name ?? <span class="muted">unnamed</span>}</td>
									<td data-label="Key id">
										<code>{key.key_id}</code>
									</td>
									<td data-label="Scopes">{key.scopes.join(", ")}</td>
									<td data-label="Agent">{key.agent_id ?? <span class="muted">any</span>}</td>
									<td data-label="Created">
										<Time iso={key.created_at} />
									</td>
									<td data-label="Last used">
										{"last_used_at" in key ? (
											<Time iso={key.last_used_at} />
										) : (
											<span class="muted">unknown</span>
										)}
									</td>
									<td>
										{key.revoked_at ? (
											<span class="badge status-disabled">revoked</span>
										) : (
											<button type="button" class="danger small" onClick={() => revoke(key)}>
												Revoke
											</button>
										)}
									</td>
								</tr>
							))}
						</tbody>
					</table>
				</div>
			)}
		</section>
	);
}
