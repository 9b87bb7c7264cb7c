// Draws the app's icons (PNG, no dependencies): a blue square with a white speech bubble.
// Run: node scripts/make-icons.mjs   (writes public/icons/icon-192.png, icon-512.png, maskable-512.png)
import { writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import path from 'node:path';

const out = path.join(import.meta.dirname, '../public/icons');
const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc = (buf) => {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};
const chunk = (type, data) => {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type), data]);
  const c = Buffer.alloc(4);
  c.writeUInt32BE(crc(td));
  return Buffer.concat([len, td, c]);
};

// Inside a rounded rectangle (centre cx,cy, half sizes hw,hh, radius r)?
const inRound = (x, y, cx, cy, hw, hh, r) => {
  const dx = Math.max(Math.abs(x - cx) - (hw - r), 0);
  const dy = Math.max(Math.abs(y - cy) - (hh - r), 0);
  return dx * dx + dy * dy <= r * r;
};

function icon(size, maskable) {
  const px = Buffer.alloc(size * (size * 4 + 1));
  const s = size / 100; // drawn on a 100×100 grid
  const k = maskable ? 0.8 : 1; // shrink the bubble into the 80 % safe zone
  for (let y = 0; y < size; y++) {
    px[y * (size * 4 + 1)] = 0;
    for (let x = 0; x < size; x++) {
      const u = x / s;
      const v = y / s;
      const bg = maskable /* full bleed */ || inRound(u, v, 50, 50, 50, 50, 22);
      // The bubble: a rounded rectangle and a tail at its lower left, scaled around the centre.
      const bu = 50 + (u - 50) / k;
      const bv = 50 + (v - 50) / k;
      const body = inRound(bu, bv, 50, 45, 28, 20, 9);
      const tail = bv >= 60 && bv <= 76 && bu >= 30 && bu <= 44 && bu - 30 <= (76 - bv) * 0.9;
      const dots = [38, 50, 62].some((cx) => (bu - cx) ** 2 + (bv - 45) ** 2 <= 16);
      const i = y * (size * 4 + 1) + 1 + x * 4;
      let c = [0, 0, 0, 0];
      if (bg) c = [31, 111, 235, 255];
      if (bg && (body || tail) && !dots) c = [255, 255, 255, 255];
      px.set(c, i);
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8;
  ihdr[9] = 6;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(px)), chunk('IEND', Buffer.alloc(0))]);
}

writeFileSync(path.join(out, 'icon-192.png'), icon(192, false));
writeFileSync(path.join(out, 'icon-512.png'), icon(512, false));
writeFileSync(path.join(out, 'maskable-512.png'), icon(512, true));
