/**
 * The fleet view's contract (src/common/fleet.ts) against the core it mirrors: the page may only
 * offer filters the admin API takes, and know every kind of integrity flag the hub records.
 */
import { describe, expect, it } from 'vitest';
import { FLAG_KINDS, FLEET_EVENT_FILTERS, FleetDeviceSchema } from '../../src/common/fleet.js';
import { FILTER_KEYS } from '../../src/core/audit/filter.js';
import type { FlagKind } from '../../src/core/audit/protocol.js';

describe("the fleet view's contract", () => {
  it('offers only filters the admin API takes', () => {
    for (const key of FLEET_EVENT_FILTERS) expect(FILTER_KEYS).toContain(key);
  });

  it('knows every flag kind of the protocol', () => {
    const all: Record<FlagKind, true> = {
      gap: true,
      fork: true,
      broken_link: true,
      bad_hash: true,
      bad_signature: true,
      malformed: true,
      checkpoint_mismatch: true,
    };
    expect([...FLAG_KINDS].sort()).toEqual(Object.keys(all).sort());
  });

  it('takes a device with only some flag kinds, and refuses an unknown kind or a count that is not a number', () => {
    const device = {
      id: 'dev_x',
      host: '',
      status: 'active',
      enrolledAt: 'now',
      lastSeenAt: null,
      acked: 1,
      highest: 1,
      user: null,
      policyVersion: null,
      policyMode: null,
    };
    expect(FleetDeviceSchema.safeParse({ ...device, openFlags: { fork: 1 } }).success).toBe(true);
    expect(FleetDeviceSchema.safeParse({ ...device, openFlags: { rumour: 1 } }).success).toBe(false);
    expect(FleetDeviceSchema.safeParse({ ...device, openFlags: { gap: 'many' } }).success).toBe(false);
  });
});
