/**
 * The contract of the hub's fleet view (docs/hub.md, "The fleet view"): what the admin API routes
 * the page reads answer, as zod schemas. The hub builds these values (src/hub/store.ts); the page
 * (renderer/fleet/) parses every answer with them before it shows anything, so a hub of another
 * version fails visibly instead of rendering nonsense.
 */
import { z } from 'zod';

export const FLAG_KINDS = ['gap', 'fork', 'broken_link', 'bad_hash', 'bad_signature', 'malformed', 'checkpoint_mismatch'] as const;
export type FleetFlagKind = (typeof FLAG_KINDS)[number];

const iso = z.string().min(1);

export const FleetDeviceSchema = z.object({
  id: z.string(),
  host: z.string(),
  status: z.enum(['active', 'revoked']),
  enrolledAt: iso,
  lastSeenAt: iso.nullable(),
  /** Highest sequence number up to which every event is held and linked. */
  acked: z.number().int(),
  /** Highest sequence number held at all. */
  highest: z.number().int(),
  /** The user of the device's newest event that names one. */
  user: z.string().nullable(),
  /** The policy version of the device's newest event that carries one. */
  policyVersion: z.string().nullable(),
  policyMode: z.string().nullable(),
  /** Unresolved integrity flags by kind (only kinds with at least one). */
  openFlags: z.partialRecord(z.enum(FLAG_KINDS), z.number().int()),
});
export type FleetDevice = z.infer<typeof FleetDeviceSchema>;

export const FleetDevicesSchema = z.object({ devices: z.array(FleetDeviceSchema), at: iso });
export type FleetDevices = z.infer<typeof FleetDevicesSchema>;

/** Refusals and approvals per time bucket, across the fleet. */
export const FleetTimelineSchema = z.object({
  from: iso,
  to: iso,
  bucketMs: z.number().int().positive(),
  /** Calls refused (policy, quota, approval, sign-in). */
  refused: z.array(z.number().int()),
  /** Approvals asked of a person, and how they ended. */
  approvalsAsked: z.array(z.number().int()),
  approved: z.array(z.number().int()),
  declined: z.array(z.number().int()),
});
export type FleetTimeline = z.infer<typeof FleetTimelineSchema>;

/** The admin API's event filters the search offers (the hub takes `after` too, for paging by device). */
export const FLEET_EVENT_FILTERS = ['from', 'to', 'user', 'client', 'server', 'tool', 'decision', 'type', 'device', 'limit'] as const;

/** The most buckets a timeline may have; more is refused as a bad filter. */
export const MAX_TIMELINE_BUCKETS = 500;

/** One row of `GET /v1/admin/events`: the stored event, whose fields the page shows as they are. */
export const FleetEventSchema = z.object({
  device: z.string(),
  seq: z.number().int(),
  hash: z.string(),
  event: z.looseObject({
    id: z.string(),
    type: z.string(),
    at: iso,
    user: z.string().optional(),
    client: z.string().optional(),
    server: z.string().optional(),
    name: z.string().optional(),
    decision: z.string().optional(),
    stage: z.string().optional(),
    code: z.string().optional(),
    reason: z.string().optional(),
    policyVersion: z.string().optional(),
  }),
});
export const FleetEventsSchema = z.object({ events: z.array(FleetEventSchema) });
export type FleetEvent = z.infer<typeof FleetEventSchema>;

export const FleetShadowServersSchema = z.object({
  shadowServers: z.array(
    z.object({
      device: z.string(),
      host: z.string(),
      at: iso,
      client: z.string(),
      name: z.string(),
      type: z.string(),
      target: z.string(),
      envKeys: z.array(z.string()),
      inCatalog: z.string().optional(),
    }),
  ),
});
export type FleetShadowServer = z.infer<typeof FleetShadowServersSchema>['shadowServers'][number];

/** Tool definitions per server and version across the fleet (`GET /v1/admin/baselines`). */
export const FleetBaselinesSchema = z.object({
  baselines: z.array(
    z.object({
      server: z.string(),
      version: z.string(),
      tool: z.string(),
      hashes: z.array(z.object({ sha256: z.string(), devices: z.number().int(), lastSeen: iso })),
      disagree: z.boolean(),
    }),
  ),
});
export type FleetBaseline = z.infer<typeof FleetBaselinesSchema>['baselines'][number];
