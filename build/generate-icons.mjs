#!/usr/bin/env node
/**
 * Draws Lanyard's icons and writes them as PNG, with no image tooling: `node build/generate-icons.mjs`.
 *
 *   build/icon.png                       1024×1024 app icon; electron-builder derives .icns / .ico from it
 *   resources/tray/trayTemplate.png      16×16 macOS menu-bar icon (a "Template" image: black + alpha, macOS tints it)
 *   resources/tray/trayTemplate@2x.png   32×32, the same for Retina
 *   resources/tray/tray.png              32×32 coloured tray icon for Windows and Linux
 *   resources/tray/trayAttention*.png    the same three with an alert dot: "something needs you" at a glance (an
 *                                        expired sign-in, a failing server); electron/main/tray-presenter.ts picks it
 *   resources/tray/dot-<tone>[@2x].png   16/32 px status dots for the servers in the tray menu (ok, busy, error, off)
 *
 * The motif is a badge on a lanyard. Shapes are described in unit coordinates and rasterised with 4×4 supersampling.
 * The output is deterministic, so re-running it changes nothing unless the drawing changes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// ---- shapes: each returns true when the point (x, y) in [0,1]² is inside --------------------------------------

const roundRect = (x0, y0, x1, y1, r) => (x, y) => {
  const dx = Math.max(x0 + r - x, 0, x - (x1 - r));
  const dy = Math.max(y0 + r - y, 0, y - (y1 - r));
  return x >= x0 && x <= x1 && y >= y0 && y <= y1 && dx * dx + dy * dy <= r * r;
};
const circle = (cx, cy, r) => (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
const capsule = (ax, ay, bx, by, w) => (x, y) => {
  const vx = bx - ax;
  const vy = by - ay;
  const t = Math.max(0, Math.min(1, ((x - ax) * vx + (y - ay) * vy) / (vx * vx + vy * vy)));
  return (x - ax - t * vx) ** 2 + (y - ay - t * vy) ** 2 <= (w / 2) ** 2;
};

// ---- the drawing: layers painted in order; a colour is [r, g, b, a] or a function of y ----------------------------

const INDIGO_TOP = [99, 102, 241];
const INDIGO_BOTTOM = [55, 48, 163];
const background = (_x, y) => [...INDIGO_TOP.map((c, i) => Math.round(c + (INDIGO_BOTTOM[i] - c) * y)), 255];
const STRAP = [199, 210, 254, 255];
const CARD = [255, 255, 255, 255];
const INK = [67, 56, 202, 255];
const CLEAR = [0, 0, 0, 0];

/**
 * The badge and strap, shared by every icon. `ink` draws the card's details; `hole` is what shows through the slot.
 * `simple` keeps only what survives at 16 px (a card with a round cut-out).
 */
function badge({ card, strap, ink, hole, simple = false }) {
  const shapes = [
    [capsule(0.31, 0.17, 0.47, 0.44, simple ? 0.1 : 0.075), strap],
    [capsule(0.69, 0.17, 0.53, 0.44, simple ? 0.1 : 0.075), strap],
    [roundRect(0.43, 0.39, 0.57, 0.5, 0.03), card],
    [roundRect(0.3, 0.45, 0.7, 0.87, 0.055), card],
  ];
  if (simple) return [...shapes, [circle(0.5, 0.66, 0.11), ink]];
  return [
    ...shapes,
    [roundRect(0.45, 0.485, 0.55, 0.51, 0.0125), hole],
    [circle(0.5, 0.615, 0.075), ink],
    [roundRect(0.38, 0.72, 0.62, 0.755, 0.0175), ink],
    [roundRect(0.42, 0.785, 0.58, 0.81, 0.0125), ink],
  ];
}

const appIcon = [
  // macOS icon grid: the body is 824/1024 of the canvas, corner radius ≈ 185/1024.
  [roundRect(0.0977, 0.0977, 0.9023, 0.9023, 0.18), background],
  ...badge({ card: CARD, strap: STRAP, ink: INK, hole: background }),
];
const BLACK = [0, 0, 0, 255];
const trayTemplate = badge({ card: BLACK, strap: BLACK, ink: CLEAR, hole: CLEAR, simple: true });
const trayColour = badge({ card: CARD, strap: [129, 140, 248, 255], ink: INK, hole: CLEAR });

// The alert dot sits top-right, over the strap, with a clear ring so it reads as a separate mark even in a
// monochrome template image (macOS tints templates, so there the dot cannot be red: its shape carries the meaning).
const ALERT = [239, 68, 68, 255];
const alertDot = (paint) => [
  [circle(0.8, 0.24, 0.23), CLEAR],
  [circle(0.8, 0.24, 0.17), paint],
];
const trayAttentionTemplate = [...badge({ card: BLACK, strap: BLACK, ink: CLEAR, hole: CLEAR, simple: true }), ...alertDot(BLACK)];
const trayAttentionColour = [...badge({ card: CARD, strap: [129, 140, 248, 255], ink: INK, hole: CLEAR }), ...alertDot(ALERT)];

// Menu dots: the colours of the dashboard's status dots (renderer/src/styles.css), a faint rim for light menus.
const DOTS = {
  ok: [34, 160, 90, 255],
  busy: [217, 146, 18, 255],
  error: [220, 53, 53, 255],
  off: [140, 146, 160, 255],
};
const dot = (paint) => [
  [circle(0.5, 0.5, 0.3), [0, 0, 0, 40]],
  [circle(0.5, 0.5, 0.26), paint],
];

// ---- rasteriser and PNG encoder -----------------------------------------------------------------------------------

function render(layers, size, samples = 4) {
  const rgba = Buffer.alloc(size * size * 4);
  for (let py = 0; py < size; py++) {
    for (let px = 0; px < size; px++) {
      let r = 0;
      let g = 0;
      let b = 0;
      let a = 0;
      for (let sy = 0; sy < samples; sy++) {
        for (let sx = 0; sx < samples; sx++) {
          const x = (px + (sx + 0.5) / samples) / size;
          const y = (py + (sy + 0.5) / samples) / size;
          let colour = CLEAR;
          for (const [inside, paint] of layers) {
            if (inside(x, y)) colour = typeof paint === 'function' ? paint(x, y) : paint;
          }
          const alpha = colour[3] / 255;
          r += colour[0] * alpha;
          g += colour[1] * alpha;
          b += colour[2] * alpha;
          a += alpha;
        }
      }
      const o = (py * size + px) * 4;
      const n = samples * samples;
      rgba[o] = a === 0 ? 0 : Math.round(r / a);
      rgba[o + 1] = a === 0 ? 0 : Math.round(g / a);
      rgba[o + 2] = a === 0 ? 0 : Math.round(b / a);
      rgba[o + 3] = Math.round((a / n) * 255);
    }
  }
  return rgba;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes) {
  let c = 0xffffffff;
  for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type, data) {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** An 8-bit RGBA, non-interlaced PNG. */
export function encodePng(rgba, width, height) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 6, 0, 0, 0], 8);
  const raw = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 4 + 1)] = 0; // filter: none
    rgba.copy(raw, y * (width * 4 + 1) + 1, y * width * 4, (y + 1) * width * 4);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

const outputs = [
  ['build/icon.png', appIcon, 1024],
  ['resources/tray/trayTemplate.png', trayTemplate, 16],
  ['resources/tray/trayTemplate@2x.png', trayTemplate, 32],
  ['resources/tray/tray.png', trayColour, 32],
  ['resources/tray/trayAttentionTemplate.png', trayAttentionTemplate, 16],
  ['resources/tray/trayAttentionTemplate@2x.png', trayAttentionTemplate, 32],
  ['resources/tray/trayAttention.png', trayAttentionColour, 32],
  ...Object.entries(DOTS).flatMap(([tone, paint]) => [
    [`resources/tray/dot-${tone}.png`, dot(paint), 16],
    [`resources/tray/dot-${tone}@2x.png`, dot(paint), 32],
  ]),
];

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const [path, layers, size] of outputs) {
    const file = resolve(root, path);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, encodePng(render(layers, size), size, size));
    console.log(`${path}  ${size}×${size}`);
  }
}
