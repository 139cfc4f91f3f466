/**
 * Validate before commit: an output's `validate` command run on the complete temp file (or, for
 * `check`, on the live file) through the command module. A failure (non-zero exit, a signal, the
 * timeout, a command that cannot start) is a VALIDATION_FAILED error carrying the command's
 * output, redacted as a whole (the run's secrets and the output's own values) before it is cut.
 */
import type { Env } from "../layout/load.js";
import type { OutputSpec } from "../layout/schema.js";
import type { ValidatePaths } from "../layout/validator.js";
import { validateArgv } from "../layout/validator.js";
import type { Clock } from "../support/clock.js";
import { childEnv, describeEnd, runCommand } from "../support/command.js";
import { parseDuration } from "../support/duration.js";
import { VrError } from "../support/errors.js";
import type { Redactor } from "../support/redact.js";
import type { RunContext } from "../run/context.js";
import { cutText } from "../support/redact.js";

const DEFAULT_TIMEOUT = "30s";
/** Characters of the command's output kept in the error line. */
const MAX_OUTPUT = 300;
/** Bytes of the command's output read (the line keeps far fewer; the rest only has to be redacted). */
const MAX_CAPTURE = 16 * 1024;

export interface ValidateContext {
  env: Env;
  cwd: string;
  clock: Clock;
  redactor: Redactor;
}

/** What a validator runs with in a sync: the run's environment (without VAULT_*), clock and redactor, in the layout's directory. */
export function validateContext(run: RunContext): ValidateContext {
  return { env: run.opts.env, cwd: run.layout.dir, clock: run.opts.clock, redactor: run.opts.redactor };
}

/**
 * Run `o.validate` with its placeholders set to `paths`; resolves when it succeeds (or there is
 * none), throws VALIDATION_FAILED otherwise. `subject` names the output in the message; `secrets`
 * (the output's values) are added to the redactor first.
 */
export async function runValidator(ctx: ValidateContext, o: OutputSpec, paths: ValidatePaths, subject: string, secrets?: unknown): Promise<void> {
  if (!o.validate) return;
  if (secrets !== undefined) ctx.redactor.add(secrets);
  const timeout = o.validateTimeout ?? DEFAULT_TIMEOUT;
  const argv = validateArgv(o.validate, paths);
  const { output, ...r } = await runCommand({ argv, env: childEnv(ctx.env), cwd: ctx.cwd, timeoutMs: parseDuration(timeout), clock: ctx.clock, maxCapture: MAX_CAPTURE });
  if (r.ok) return;
  // Redacted whole (a secret cut off by the capture limit loses its visible prefix too), made one
  // line, redacted again (a secret that spanned a line break is whole now), and only then cut.
  const red = ctx.redactor;
  const whole = output.truncated ? red.redactCutOff(output.text) : red.redact(output.text);
  const text = cutText(red.redact(whole.replace(/\s+/g, " ").trim()), MAX_OUTPUT);
  throw new VrError("VALIDATION_FAILED", `validate command ${JSON.stringify(o.validate[0])} ${describeEnd(r, timeout)} for ${subject}${text ? `: ${text}` : " (no output)"}`, {
    hint: "the live file was kept and this output's hooks did not run; fix the secret in Vault or the validate command",
  });
}
