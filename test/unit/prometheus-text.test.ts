/**
 * The strict reader of the Prometheus text format that the /metrics tests scrape with
 * (test/support/prometheus-text.ts): it must refuse what a scraper would, or those tests prove nothing.
 */
import { describe, expect, it } from 'vitest';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text.js';

const histogram = (inf: number) =>
  [
    '# TYPE t_seconds histogram',
    `t_seconds_bucket{le="0.1",o="a"} 1`,
    `t_seconds_bucket{le="+Inf",o="a"} ${inf}`,
    't_seconds_sum{o="a"} 0.3',
    't_seconds_count{o="a"} 2',
    '',
  ].join('\n');

describe('the Prometheus text reader used by the /metrics tests', () => {
  it('reads labelled histograms, escaped label values and special values', () => {
    const text = `${histogram(2)}# HELP g A gauge.\n# TYPE g gauge\ng{path="C:\\\\x",msg="say \\"hi\\"\\n"} -Inf\ng{path="b"} Nan\n`;
    const m = parsePrometheusText(text);
    expect(sampleValue(m, 't_seconds_count', { o: 'a' })).toBe(2);
    expect(sampleValue(m, 't_seconds_bucket', { o: 'a', le: '+Inf' })).toBe(2);
    expect(m.get('g')!.samples[0]!.labels).toEqual({ path: 'C:\\x', msg: 'say "hi"\n' });
    expect(sampleValue(m, 'g', { path: 'C:\\x' })).toBe(-Infinity);
    expect(sampleValue(m, 'g', { path: 'b' })).toBeNaN();
  });

  it('refuses a histogram whose +Inf bucket is not its count, and buckets that are not cumulative', () => {
    expect(() => parsePrometheusText(histogram(3))).toThrow(/differs from the count/);
    expect(() => parsePrometheusText(histogram(0).replace('t_seconds_count{o="a"} 2', 't_seconds_count{o="a"} 0'))).toThrow(/not cumulative/);
  });

  it('refuses malformed lines, bad names, undeclared families, a second TYPE and a missing final line feed', () => {
    expect(() => parsePrometheusText('# TYPE a counter\na 1 2 3\n')).toThrow(/not a sample line/);
    expect(() => parsePrometheusText('# TYPE a counter\na{1x="v"} 1\n')).toThrow(/bad label/);
    expect(() => parsePrometheusText('# TYPE a counter\na{x="v" y="w"} 1\n')).toThrow(/separated by commas/);
    expect(() => parsePrometheusText('# TYPE a counter\na twelve\n')).toThrow(/bad value/);
    expect(() => parsePrometheusText('b 1\n')).toThrow(/no TYPE line/);
    expect(() => parsePrometheusText('# TYPE a counter\n# TYPE a gauge\n')).toThrow(/twice/);
    expect(() => parsePrometheusText('# TYPE a counter\na 1')).toThrow(/line feed/);
  });
});
