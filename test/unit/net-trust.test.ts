import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTrust } from '../../electron/broker/net/trust';
import { makePki } from '../integration/net-fixtures';

describe('trust sources for doctor', () => {
  it('reports the certificates of NODE_EXTRA_CA_CERTS when asked, and a broken bundle as none without failing', async () => {
    const pki = await makePki();
    const bundle = path.join(pki.dir, 'extra.pem');
    await writeFile(bundle, `${await readFile(pki.caFile, 'utf8')}\n${pki.leaf.cert}\n`);
    const [source] = loadTrust({ env: { NODE_EXTRA_CA_CERTS: bundle } }).sources;
    expect(source).toMatchObject({ kind: 'NODE_EXTRA_CA_CERTS', path: bundle });
    expect(source!.subjects).toHaveLength(2);
    expect(source!.subjects.every((s) => s.includes('CN='))).toBe(true);

    const missing = loadTrust({ env: { NODE_EXTRA_CA_CERTS: path.join(pki.dir, 'missing.pem') } }).sources[0]!;
    expect(missing.subjects).toEqual([]);
  });
});
