/** Everything the double knows, shared by the transport, the model and the engines. */
import { randomUUID } from "node:crypto";
import type { Acl, Policy } from "./acl.js";
import { Clock } from "./clock.js";
import type { GenericEntry, LeaseEntry, Mount, TokenEntry, WrapEntry } from "./model/types.js";
import { KeyPool } from "./pki.js";
import type { Fault, RequestLogEntry } from "./types.js";
import { hex } from "./util.js";

interface FaultSlot {
  f: Fault;
  remaining: number;
}

export class State {
  readonly clock = new Clock();
  readonly requests: RequestLogEntry[] = [];
  readonly clusterName = `vault-cluster-${hex(8)}`;
  readonly clusterId = randomUUID();
  rootToken = "";

  latencyMs = 0;
  /** Every latency the double slept before answering (global or a fault's), in ms, in order: what tests assert on, never elapsed time. */
  readonly latencyWaits: number[] = [];
  sealed = false;
  initialized = true;
  standby = false;
  faults: FaultSlot[] = [];

  readonly tokens = new Map<string, TokenEntry>();
  readonly deadTokenAccessors = new Map<string, string>();
  readonly wraps = new Map<string, WrapEntry>();
  readonly policies = new Map<string, Policy>();
  readonly policyText = new Map<string, string>();
  readonly aclCache = new Map<string, Acl>();
  readonly mounts = new Map<string, Mount>();
  readonly generic = new Map<string, GenericEntry>();
  readonly leases = new Map<string, LeaseEntry>();
  readonly keyPool = new KeyPool();

  constructor(
    readonly versionString: string,
    /** the server speaks HTTPS (responses carry HSTS) */
    readonly tls: boolean,
  ) {}
}


