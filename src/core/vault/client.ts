/**
 * The Vault API the rest of the product uses: node-vault's commands over our own transport
 * (./transport.ts; node-vault never creates its axios instance), and:
 * - never lets node-vault read process.env (VAULT_SKIP_VERIFY, VAULT_TOKEN, VAULT_PREFIX) on its own;
 * - replaces node-vault's `debug`, which prints request bodies (secret_id!);
 * - turns every failure into a one-line VrError naming the Vault path and what happened
 *   (./classify.ts), never a raw error that could carry a header or a body;
 * - marks the requests with a side effect (a login, a certificate, leased credentials, a
 *   secret_id, an unwrap) so the transport never replays one that may have reached Vault.
 */
import { readFileSync } from "node:fs";
import nodeVault from "node-vault";
import { ExitCode, VrError } from "../support/errors.js";
import type { VaultConnection } from "../layout/load.js";
import { argCheck } from "./arg-check.js";
import { classifyResponse } from "./classify.js";
import { requestName, Transport } from "./transport.js";

export { VaultRequestError } from "./classify.js";

export interface VaultResponse {
  request_id?: string;
  lease_id?: string;
  renewable?: boolean;
  lease_duration?: number;
  data?: Record<string, unknown> | null;
  wrap_info?: Record<string, unknown> | null;
  warnings?: string[] | null;
  auth?: {
    client_token: string;
    accessor: string;
    policies: string[];
    lease_duration: number;
    renewable: boolean;
    token_type?: string;
  } | null;
}

export interface RequestOptions {
  /** Use this token for the call instead of the client's (e.g. a wrapping token). */
  token?: string;
  /** Do not retry at all. */
  noRetry?: boolean;
  /**
   * The request has a side effect a replay would repeat (an AppRole login burns a secret_id use,
   * `pki/issue` issues a certificate, a leased credential read creates credentials, secret-id
   * creation, an unwrap): retried only when it cannot have reached Vault (connection refused, DNS,
   * TLS handshake). A timeout, a dropped connection, a 5xx or a 429 fail it: the next run decides.
   */
  sideEffect?: boolean;
  /** Query parameters. */
  query?: Record<string, string>;
  headers?: Record<string, string>;
}

export interface ClientDeps {
  sleep: (ms: number) => Promise<void>;
  random: () => number;
  /** Called for each retry, for logging. */
  onRetry?: (info: { path: string; attempt: number; waitMs: number; reason: string }) => void;
  /** The run's redactor: Vault's error text is redacted before it is cut to length. */
  redact?: (text: string) => string;
}

type NvArgs = Record<string, unknown> & { requestOptions?: Record<string, unknown> };
interface NodeVaultClient {
  token?: string;
  namespace?: string;
  pathPrefix?: string;
  request(o: Record<string, unknown>): Promise<unknown>;
  read(path: string, requestOptions?: Record<string, unknown>): Promise<unknown>;
  write(path: string, data: unknown, requestOptions?: Record<string, unknown>): Promise<unknown>;
  approleLogin(args: NvArgs): Promise<unknown>;
  unwrap(args: NvArgs): Promise<unknown>;
  tokenLookupSelf(args: NvArgs): Promise<unknown>;
  tokenRenewSelf(args: NvArgs): Promise<unknown>;
  renew(args: NvArgs): Promise<unknown>;
  revoke(args: NvArgs): Promise<unknown>;
}

/** Characters mustache leaves as they are in node-vault's command paths ("/" it escapes and node-vault restores). */
const MUSTACHE_SAFE = /^[A-Za-z0-9_./-]+$/;

/** sys/health codes that keep every state below 300, as the official client does. */
const HEALTH_QUERY = "standbyok=false&uninitcode=299&sealedcode=299&standbycode=299&drsecondarycode=299&performancestandbycode=299";

export class VaultClient {
  readonly address: string;
  private readonly nv: NodeVaultClient;
  private readonly transport: Transport;
  private readonly deps: ClientDeps;

  constructor(conn: VaultConnection, deps: ClientDeps) {
    this.deps = deps;
    this.address = conn.address;
    let ca: Buffer | undefined;
    if (conn.caCertFile && conn.address.startsWith("https:")) {
      try {
        ca = readFileSync(conn.caCertFile);
      } catch (e) {
        throw new VrError("CONFIG_ENV", `cannot read the CA certificate ${conn.caCertFile}: ${(e as NodeJS.ErrnoException).code ?? "error"}`, { exit: ExitCode.Usage });
      }
    }
    this.transport = new Transport({
      address: conn.address,
      ca,
      servername: conn.tlsServerName,
      rejectUnauthorized: !conn.skipVerify,
      timeoutMs: conn.timeoutMs,
      retries: conn.retries,
      concurrency: conn.concurrency,
      sleep: deps.sleep,
      random: deps.random,
      onRetry: deps.onRetry,
      redact: deps.redact,
    });
    const options = {
      endpoint: conn.address,
      apiVersion: "v1",
      noCustomHTTPVerbs: true,
      // node-vault's default debug logs request bodies; ours stays silent.
      debug: () => undefined,
      // tv4 builds a validator per call; the same schemas, checked for a fraction of the cost.
      tv4: argCheck(),
      "request-promise": this.transport.nodeVaultAdapter(),
    };
    this.nv = nodeVault(options as unknown as Parameters<typeof nodeVault>[0]);
    // node-vault falls back to VAULT_TOKEN / VAULT_NAMESPACE / VAULT_PREFIX from process.env: pin them.
    this.nv.token = undefined;
    this.nv.namespace = conn.namespace;
    this.nv.pathPrefix = "";
  }

  /** HTTP requests sent (retries included). */
  get requestCount(): number {
    return this.transport.requestCount;
  }

  /** Close the kept-alive connections (end of a run or a watch pass). */
  close(): void {
    this.transport.close();
  }

  setToken(token: string | undefined): void {
    this.nv.token = token;
  }

  /** node-vault's per-call options: a per-call token and extra headers. */
  private static requestOptions(opts: RequestOptions): Record<string, unknown> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    // A per-call token goes in the header, which node-vault lets win over the client's token
    // (concurrent requests share the client, so it is never swapped).
    if (typeof opts.token === "string") headers["X-Vault-Token"] = opts.token;
    return { headers };
  }

  /** Runs a node-vault command; whatever it rejects with becomes a VaultRequestError or a VrError. */
  private call(method: string, vaultPath: string, run: () => Promise<unknown>, opts: RequestOptions = {}): Promise<VaultResponse> {
    return this.transport.withRetries(() => this.once(method, vaultPath, run), opts);
  }

  private async once(method: string, vaultPath: string, run: () => Promise<unknown>): Promise<VaultResponse> {
    try {
      const res = await run();
      return (res === "" || res === undefined || res === null ? {} : res);
    } catch (e) {
      if (e instanceof VrError) throw e;
      const name = requestName(method, `/v1/${vaultPath}`, "");
      // node-vault's own answer for a 2xx other than 200/204 (outside sys/health).
      const resp = (e as { response?: { statusCode?: unknown; body?: unknown } } | null)?.response;
      if (resp && typeof resp.statusCode === "number") {
        throw classifyResponse({ status: resp.statusCode, body: resp.body, contentType: undefined, retryAfter: undefined, location: undefined }, name, this.deps.redact);
      }
      // The arguments' check refused them, or Node refused a header (a character a token or a
      // namespace cannot hold): never a Vault answer. The message names the header, not its value.
      const message = typeof (e as { message?: unknown } | null)?.message === "string" ? (e as { message: string }).message : "unknown error";
      throw new VrError("INTERNAL", `${name.op} ${vaultPath}: the request could not be made (${message})`, { exit: ExitCode.Failed });
    }
  }

  read(vaultPath: string, opts: RequestOptions = {}): Promise<VaultResponse> {
    const qs = opts.query ? "?" + new URLSearchParams(opts.query).toString() : "";
    return this.call("GET", vaultPath, () => this.nv.read(vaultPath + qs, VaultClient.requestOptions(opts)), opts);
  }

  write(vaultPath: string, body: unknown, opts: RequestOptions = {}): Promise<VaultResponse> {
    return this.call("POST", vaultPath, () => this.nv.write(vaultPath, body, VaultClient.requestOptions(opts)), opts);
  }

  /** AppRole login. Burns a use of the secret_id: never replayed once it may have reached Vault. */
  approleLogin(mount: string, roleId: string, secretId: string): Promise<VaultResponse> {
    const body = { role_id: roleId, secret_id: secretId };
    // node-vault renders the path with mustache, which HTML-escapes & < > " ' = ` (only "/" is
    // turned back): a mount with one of those is logged in to through `write`, to the same path.
    const run = MUSTACHE_SAFE.test(mount)
      ? () => this.nv.approleLogin({ mount_point: mount, ...body, requestOptions: VaultClient.requestOptions({}) })
      : () => this.nv.write(`auth/${mount}/login`, body, VaultClient.requestOptions({}));
    return this.call("POST", `auth/${mount}/login`, run, { sideEffect: true });
  }

  /** Unwrap a response-wrapped secret: the wrapping token authenticates the call (single use). */
  unwrap(wrappingToken: string): Promise<VaultResponse> {
    return this.call("POST", "sys/wrapping/unwrap", () => this.nv.unwrap({ requestOptions: VaultClient.requestOptions({ token: wrappingToken }) }), { sideEffect: true });
  }

  tokenLookupSelf(): Promise<VaultResponse> {
    return this.call("GET", "auth/token/lookup-self", () => this.nv.tokenLookupSelf({ requestOptions: VaultClient.requestOptions({}) }));
  }

  tokenRenewSelf(increment: number): Promise<VaultResponse> {
    return this.call("POST", "auth/token/renew-self", () => this.nv.tokenRenewSelf({ increment: Math.max(0, Math.round(increment)), requestOptions: VaultClient.requestOptions({}) }));
  }

  renewLease(leaseId: string, increment: number): Promise<VaultResponse> {
    return this.call("PUT", "sys/leases/renew", () => this.nv.renew({ lease_id: leaseId, increment: Math.max(0, Math.round(increment)), requestOptions: VaultClient.requestOptions({}) }));
  }

  revokeLease(leaseId: string): Promise<VaultResponse> {
    return this.call("PUT", "sys/leases/revoke", () => this.nv.revoke({ lease_id: leaseId, requestOptions: VaultClient.requestOptions({}) }));
  }

  /**
   * GET sys/health with codes that keep every state below 300. node-vault's `health` command
   * cannot send `drsecondarycode` or `performancestandbycode` (its schema drops them), so this is
   * the one raw request.
   */
  async health(): Promise<Record<string, unknown>> {
    return (await this.call("GET", "sys/health", () => this.nv.request({ path: `/sys/health?${HEALTH_QUERY}`, method: "GET", ...VaultClient.requestOptions({}) }))) as Record<string, unknown>;
  }
}
