import { describe, expect, it } from 'vitest';
import { RingBuffer } from '../../src/core/ring-buffer.js';

describe('RingBuffer', () => {
  it('keeps every line while there is room, oldest first', () => {
    const ring = new RingBuffer(3);
    ring.push('a');
    ring.push('b');
    expect(ring.last()).toEqual(['a', 'b']);
    expect(ring.size).toBe(2);
    expect(ring.dropped).toBe(0);
  });

  it('forgets the oldest lines once full, and never holds more than its capacity', () => {
    const ring = new RingBuffer(3);
    for (const line of ['a', 'b', 'c', 'd', 'e']) ring.push(line);
    expect(ring.last()).toEqual(['c', 'd', 'e']);
    expect(ring.size).toBe(3);
    expect(ring.dropped).toBe(2);
  });

  it('stays in order after wrapping around many times', () => {
    const ring = new RingBuffer(4);
    for (let i = 0; i < 1001; i++) ring.push(String(i));
    expect(ring.last()).toEqual(['997', '998', '999', '1000']);
  });

  it('returns the last n lines, and no more lines than it holds', () => {
    const ring = new RingBuffer(5);
    for (const line of ['a', 'b', 'c', 'd', 'e', 'f']) ring.push(line);
    expect(ring.last(2)).toEqual(['e', 'f']);
    expect(ring.last(50)).toEqual(['b', 'c', 'd', 'e', 'f']);
    expect(ring.last(0)).toEqual([]);
    expect(ring.last(-3)).toEqual([]);
    expect(ring.last(2.7)).toEqual(['e', 'f']);
  });

  it('holds exactly one line when its capacity is one', () => {
    const ring = new RingBuffer(1);
    ring.push('a');
    ring.push('b');
    expect(ring.last()).toEqual(['b']);
  });

  it('empties on clear and fills again from the start', () => {
    const ring = new RingBuffer(2);
    for (const line of ['a', 'b', 'c']) ring.push(line);
    ring.clear();
    expect(ring.last()).toEqual([]);
    expect(ring.dropped).toBe(0);
    ring.push('d');
    expect(ring.last()).toEqual(['d']);
  });

  it('refuses a capacity that is not a positive whole number', () => {
    expect(() => new RingBuffer(0)).toThrow(RangeError);
    expect(() => new RingBuffer(-1)).toThrow(RangeError);
    expect(() => new RingBuffer(1.5)).toThrow(RangeError);
    expect(() => new RingBuffer(Number.NaN)).toThrow(RangeError);
  });
});
