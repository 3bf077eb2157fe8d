/**
 * Whether the daemon sends telemetry, and to where: the managed settings decide first (forced on
 * with the organisation's collector, or forced off), else the user's config; absent both, nothing
 * is sent. Only when it is on is the SDK loaded (a dynamic import of ./sdk.js), so that a daemon
 * without telemetry neither loads nor pays for it.
 */
import type { TelemetryConfig } from '../../common/config.js';
import { GatehouseError, errorMessage } from '../../common/errors.js';
import type { TelemetryStatus } from '../../common/status.js';
import type { AuditRecord, Logger } from '../../core/ports.js';
import type { SecretStore } from '../../core/secrets.js';
import type { CallTracer } from '../../core/telemetry/ports.js';
import type { TelemetryPolicy } from '../policy/settings.js';
import { USER_SECRET_NAME, USER_SECRET_RULE, userSecretItem, type SecretScrubber } from '../secrets/resolver.js';
import type { TelemetryObservations } from './sdk.js';

/** How long stopping the daemon waits for the last export. */
const SHUTDOWN_GRACE_MS = 2000;

export type TelemetryChoice = { on: false; reason: string } | { on: true; config: TelemetryConfig; source: 'config' | 'managed' };

/** The managed rule over the user's config. Pure, so that every combination has a unit test. */
export function chooseTelemetry(user: TelemetryConfig | undefined, managed: TelemetryPolicy): TelemetryChoice {
  if (managed.kind === 'off') return { on: false, reason: `turned off by the managed settings (${managed.by})` };
  if (managed.kind === 'on') return { on: true, config: managed.config, source: 'managed' };
  if (user) return { on: true, config: user, source: 'config' };
  return { on: false, reason: 'not configured' };
}

const REFERENCE = /\$\{secret:([^}]*)\}/g;

/**
 * Header values with their `${secret:NAME}` references replaced from the key store. A missing
 * secret is an error naming it and the command that adds it; a reference is never sent as text.
 * Every value resolved is added to the scrubber, so that no log line can carry it.
 */
export async function resolveTelemetryHeaders(headers: Record<string, string>, store: SecretStore, scrubber: SecretScrubber): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    let resolved = value;
    for (const match of value.matchAll(REFERENCE)) {
      const name = match[1]!;
      if (!USER_SECRET_NAME.test(name))
        throw new GatehouseError('invalid_secret_name', `telemetry.headers.${key} refers to "\${secret:${name}}": ${USER_SECRET_RULE}`);
      const secret = await store.get(userSecretItem(name));
      if (secret === undefined) {
        throw new GatehouseError(
          'secret_missing',
          `telemetry.headers.${key} needs the secret "${name}", which is not in the keychain; add it with \`gatehouse secrets set ${name}\` and restart Gatehouse`,
        );
      }
      scrubber.add(name, secret);
      resolved = resolved.replace(match[0], () => secret.unwrap());
    }
    out[key] = resolved;
  }
  return out;
}

/** The telemetry the daemon runs with: the tracer for the gateway, and the audit records for the metrics. */
export interface Telemetry {
  readonly tracer: CallTracer | undefined;
  observeAudit(record: AuditRecord): void;
  status(): TelemetryStatus;
  shutdown(): Promise<void>;
}

export interface OpenTelemetryOptions {
  choice: TelemetryChoice;
  secrets: SecretStore;
  scrubber: SecretScrubber;
  version: string;
  logger: Logger;
  observe: TelemetryObservations;
}

/**
 * Starts telemetry when the choice says so. A failure to start (a missing secret) leaves it off and
 * says why in the log and in status: it never keeps the daemon from serving calls.
 */
export async function openTelemetry(options: OpenTelemetryOptions): Promise<Telemetry> {
  const { choice, logger } = options;
  if (!choice.on) return off({ enabled: false, reason: choice.reason });
  const where = {
    endpoint: choice.config.endpoint,
    source: choice.source,
    sampling: choice.config.sampling,
    headers: Object.keys(choice.config.headers).sort(),
  };
  let headers: Record<string, string>;
  try {
    headers = await resolveTelemetryHeaders(choice.config.headers, options.secrets, options.scrubber);
  } catch (error) {
    const reason = errorMessage(error);
    logger.log('error', 'telemetry.not_started', { ...where, error: reason });
    return off({ enabled: false, reason: `not started: ${reason}`, ...where });
  }
  const { startSdk } = await import('./sdk.js');
  const sdk = startSdk({ config: choice.config, headers, version: options.version, logger, observe: options.observe });
  logger.log('info', 'telemetry.started', where);
  return {
    tracer: sdk.tracer,
    observeAudit: (record) => {
      try {
        sdk.observeAudit(record);
      } catch (error) {
        // Metrics are an observer: a fault there never reaches the call or the audit log.
        logger.log('error', 'telemetry.observe_failed', { type: record.type, error: errorMessage(error) });
      }
    },
    status: () => ({ enabled: true, ...where }),
    // What is queued goes out, but a collector that does not answer does not hold the daemon's stop for long.
    shutdown: async () => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, SHUTDOWN_GRACE_MS)));
      await Promise.race([sdk.shutdown(), grace]);
      clearTimeout(timer);
    },
  };
}

function off(status: TelemetryStatus): Telemetry {
  return { tracer: undefined, observeAudit: () => undefined, status: () => status, shutdown: () => Promise.resolve() };
}
