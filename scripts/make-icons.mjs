#!/usr/bin/env node
/**
 * Draws the application icon set into resources/icons/ with ImageMagick (`convert`): the master
 * 1024×1024 PNG, the Linux sizes (png/<n>x<n>.png), the Windows icon (icon.ico) and the macOS
 * icon (icon.icns, written here: an ICNS file is a header and PNG entries). The drawing is simple
 * geometry, so the set is reproducible on any machine with ImageMagick:
 *
 *   node scripts/make-icons.mjs
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const DIR = new URL('../resources/icons/', import.meta.url).pathname;
const master = join(DIR, 'icon.png');
mkdirSync(join(DIR, 'png'), { recursive: true });

// A gate: a rounded blue tile, two white towers with battlements, an arch between them, a shield-shaped keyhole.
execFileSync('convert', [
  '-size',
  '1024x1024',
  'xc:none',
  '-fill',
  '#1f5fa8',
  '-draw',
  'roundrectangle 64,64 960,960 180,180',
  '-fill',
  '#ffffff',
  '-draw',
  'rectangle 232,360 400,800',
  '-draw',
  'rectangle 624,360 792,800',
  '-draw',
  'rectangle 232,300 276,370',
  '-draw',
  'rectangle 294,300 338,370',
  '-draw',
  'rectangle 356,300 400,370',
  '-draw',
  'rectangle 624,300 668,370',
  '-draw',
  'rectangle 686,300 730,370',
  '-draw',
  'rectangle 748,300 792,370',
  '-draw',
  'rectangle 400,470 624,800',
  '-fill',
  '#1f5fa8',
  '-draw',
  'rectangle 448,600 576,800',
  '-draw',
  'circle 512,600 576,600',
  '-fill',
  '#ffd166',
  '-draw',
  'circle 512,640 530,640',
  '-draw',
  'polygon 496,650 528,650 540,720 484,720',
  master,
]);

const sizes = [16, 24, 32, 48, 64, 128, 256, 512];
for (const n of sizes) execFileSync('convert', [master, '-resize', `${n}x${n}`, join(DIR, 'png', `${n}x${n}.png`)]);
execFileSync('convert', [...[16, 24, 32, 48, 64, 128, 256].map((n) => join(DIR, 'png', `${n}x${n}.png`)), join(DIR, 'icon.ico')]);

// ICNS: 'icns' + total length, then per entry a type, its length (with the 8-byte header) and a PNG.
const entries = [
  ['ic07', join(DIR, 'png', '128x128.png')],
  ['ic08', join(DIR, 'png', '256x256.png')],
  ['ic09', join(DIR, 'png', '512x512.png')],
  ['ic10', master],
].map(([type, file]) => {
  const png = readFileSync(file);
  const head = Buffer.alloc(8);
  head.write(type, 0, 'ascii');
  head.writeUInt32BE(png.length + 8, 4);
  return Buffer.concat([head, png]);
});
const body = Buffer.concat(entries);
const head = Buffer.alloc(8);
head.write('icns', 0, 'ascii');
head.writeUInt32BE(body.length + 8, 4);
writeFileSync(join(DIR, 'icon.icns'), Buffer.concat([head, body]));
console.log(`icons written to ${DIR}`);
