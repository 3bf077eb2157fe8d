/**
 * Fleet baselines: every device reports the hash of each tool definition it sees, per server and
 * server version (audit events of type `catalog.tools_seen`, synced to the hub with the rest of the
 * signed audit chain). A server that serves different definitions of one tool to different people
 * at one version is a warning sign (a targeted rug pull, a compromised mirror). An admin promotes
 * the agreed definitions into the bundle's pins.
 */

/** One row the hub counts: how many devices saw this definition. */
export interface BaselineRow {
  server: string;
  version: string;
  tool: string;
  sha256: string;
  devices: number;
  lastSeen: string;
}

export interface Baseline {
  server: string;
  version: string;
  tool: string;
  /** Each definition seen, most devices first. */
  hashes: { sha256: string; devices: number; lastSeen: string }[];
  /** More than one definition at one version. */
  disagree: boolean;
}

export function baselines(rows: readonly BaselineRow[]): Baseline[] {
  const byKey = new Map<string, Baseline>();
  for (const row of rows) {
    const key = JSON.stringify([row.server, row.version, row.tool]);
    let b = byKey.get(key);
    if (!b) byKey.set(key, (b = { server: row.server, version: row.version, tool: row.tool, hashes: [], disagree: false }));
    b.hashes.push({ sha256: row.sha256, devices: row.devices, lastSeen: row.lastSeen });
  }
  const out = [...byKey.values()];
  for (const b of out) {
    b.hashes.sort((x, y) => y.devices - x.devices || x.sha256.localeCompare(y.sha256));
    b.disagree = b.hashes.length > 1;
  }
  return out.sort(
    (x, y) => Number(y.disagree) - Number(x.disagree) || x.server.localeCompare(y.server) || x.version.localeCompare(y.version) || x.tool.localeCompare(y.tool),
  );
}

/**
 * The pins to write for one server at one version: each tool's definition, when the fleet agrees
 * on it. A tool whose devices disagree is not promoted unless the admin names the hash to keep.
 */
export function promotion(
  all: readonly Baseline[],
  server: string,
  version: string,
  chosen: ReadonlyMap<string, string> = new Map(),
): { pins: Map<string, string>; refused: string[] } {
  const pins = new Map<string, string>();
  const refused: string[] = [];
  for (const b of all) {
    if (b.server !== server || b.version !== version) continue;
    const pick = chosen.get(b.tool);
    if (pick !== undefined) {
      if (b.hashes.some((h) => h.sha256 === pick)) pins.set(b.tool, pick);
      else refused.push(`${b.tool}: no device saw the definition ${pick.slice(0, 12)}…`);
    } else if (b.disagree) {
      refused.push(
        `${b.tool}: devices disagree (${b.hashes.map((h) => `${h.sha256.slice(0, 12)}… on ${h.devices}`).join(', ')}); name the one to pin with --tool ${b.tool}=SHA256`,
      );
    } else pins.set(b.tool, b.hashes[0]!.sha256);
  }
  return { pins, refused };
}
