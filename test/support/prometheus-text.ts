/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), for tests that scrape
 * `/metrics` as Prometheus would. Strict on purpose: it throws on anything a scraper would
 * reject or misread (a malformed line, a bad name or label, a sample of an undeclared family, a
 * family declared twice, a histogram whose buckets are not cumulative or whose `+Inf` bucket
 * differs from its count), so a test that reads an exposition also validates it.
 *
 * The npm parsers looked at drop the labels of labelled histograms, which is what the hub exposes.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const typed = new Set<string>();
  const fail = (n: number, why: string, line: string): never => {
    throw new Error(`line ${n + 1}: ${why}: ${JSON.stringify(line)}`);
  };
  const lines = text.split('\n');
  if (lines.at(-1) !== '') throw new Error('the exposition must end with a line feed');
  lines.forEach((line, n) => {
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // other comments are allowed and ignored
      const [, kind, name, rest] = m as unknown as [string, 'HELP' | 'TYPE', string, string];
      if (!NAME.test(name)) fail(n, 'bad metric name', line);
      const family: Family = families.get(name) ?? { name, type: 'untyped', help: '', samples: [] };
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) fail(n, 'unknown type', line);
        if (family.samples.length > 0 || typed.has(name)) fail(n, 'TYPE after samples or twice', line);
        family.type = rest as Family['type'];
        typed.add(name);
      } else family.help = unescape(rest, false);
      families.set(name, family);
      return;
    }
    const sample = parseSample(line, n, fail);
    const family = familyOf(families, sample.name);
    if (!family) fail(n, 'a sample of a family with no TYPE line', line);
    family!.samples.push(sample);
  });
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family);
  return families;
}

/** A sample's family: its own name, or for histograms and summaries the name without the suffix. */
function familyOf(families: Map<string, Family>, name: string): Family | undefined {
  const own = families.get(name);
  if (own) return own;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  const base = m ? families.get(m[1]!) : undefined;
  if (base && (base.type === 'histogram' || (base.type === 'summary' && m![2] !== 'bucket'))) return base;
  return undefined;
}

function parseSample(line: string, n: number, fail: (n: number, why: string, line: string) => never): Sample {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)( -?\d+)?$/.exec(line);
  if (!m) fail(n, 'not a sample line', line);
  const [, name, labelText, valueText] = m!;
  const labels: Record<string, string> = {};
  if (labelText) {
    let rest = labelText.slice(1, -1);
    while (rest.length > 0) {
      const l = /^([^=]+)="((?:[^"\\]|\\.)*)"(,?)/.exec(rest);
      if (!l || !LABEL.test(l[1]!)) fail(n, 'bad label', line);
      if (l![1]! in labels) fail(n, `label ${l![1]} twice`, line);
      labels[l![1]!] = unescape(l![2]!, true);
      rest = rest.slice(l![0].length);
      if (l![3] === '' && rest.length > 0) fail(n, 'labels must be separated by commas', line);
    }
  }
  // Prometheus reads values with Go's ParseFloat: NaN and Inf in any case, with an optional sign.
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(valueText!);
  const value = special ? (special[2]!.toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity) : Number(valueText);
  if (Number.isNaN(value) && !special) fail(n, 'bad value', line);
  return { name: name!, labels, value };
}

function unescape(text: string, quoted: boolean): string {
  return text.replace(/\\(.)/g, (all, c: string) => (c === 'n' ? '\n' : c === '\\' ? '\\' : quoted && c === '"' ? '"' : all));
}

function checkHistogram(family: Family): void {
  const series = new Map<string, { buckets: [number, number][]; count?: number }>();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const entry = series.get(key) ?? { buckets: [] };
    if (s.name === `${family.name}_bucket`) {
      if (le === undefined) throw new Error(`${family.name}: a bucket without le`);
      entry.buckets.push([le === '+Inf' ? Infinity : Number(le), s.value]);
    } else if (s.name === `${family.name}_count`) entry.count = s.value;
    series.set(key, entry);
  }
  for (const [key, { buckets, count }] of series) {
    const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < sorted.length; i++) if (sorted[i]![1] < sorted[i - 1]![1]) throw new Error(`${family.name}${key}: buckets are not cumulative`);
    if (sorted.at(-1)?.[0] !== Infinity) throw new Error(`${family.name}${key}: no +Inf bucket`);
    if (sorted.at(-1)![1] !== count) throw new Error(`${family.name}${key}: the +Inf bucket (${sorted.at(-1)![1]}) differs from the count (${count})`);
  }
}

/** The value of the one sample of `name` whose labels include `labels`; undefined if none, an error if several. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = familyOf(families, name);
  const found = (family?.samples ?? []).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}
