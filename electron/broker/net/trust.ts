import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { ErrorCodes } from '../../../shared/errors';
import { LanyardError } from '../errors';

/**
 * The certificate authorities Lanyard trusts on every outbound hop: Node's defaults (its bundled roots, plus
 * NODE_EXTRA_CA_CERTS, which Node reads once at start, plus the OS store when Node runs with --use-openssl-ca) and the
 * company bundle named by `network.caFile`. The bundle is ADDED to a default secure context instead of passed as `ca`,
 * because `ca` would replace the defaults, and with them the public roots every other server needs.
 */

export interface TrustSource {
  kind: 'network.caFile' | 'NODE_EXTRA_CA_CERTS';
  path: string;
  /** The subjects of the certificates the file holds (for doctor). */
  subjects: string[];
}

export interface Trust {
  /** A secure context with the extra roots, or undefined when Node's default context already says it all. */
  secureContext: SecureContext | undefined;
  sources: TrustSource[];
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM bundle, each checked to parse; throws a LanyardError naming the file when it cannot be used. */
export function readPemBundle(file: string, setting: string): { pems: string[]; subjects: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      `The certificate bundle ${file} (${setting}) cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}).`,
      `Point ${setting} at a readable PEM file with your company's CA certificate.`,
      { cause: e },
    );
  }
  const pems = text.match(PEM_BLOCK) ?? [];
  const subjects: string[] = [];
  for (const pem of pems) {
    try {
      subjects.push(new X509Certificate(pem).subject.replace(/\n/g, ', '));
    } catch (e) {
      throw new LanyardError(
        ErrorCodes.CONFIG_INVALID,
        `The certificate bundle ${file} (${setting}) holds a certificate that does not parse.`,
        `Export your company's CA again as PEM (Base-64 encoded X.509) and point ${setting} at it.`,
        { cause: e },
      );
    }
  }
  if (pems.length === 0)
    throw new LanyardError(
      ErrorCodes.CONFIG_INVALID,
      `The certificate bundle ${file} (${setting}) holds no PEM certificate.`,
      `Export your company's CA as PEM (a "-----BEGIN CERTIFICATE-----" block) and point ${setting} at it.`,
    );
  return { pems, subjects };
}

export function loadTrust(options: { caFile?: string | undefined; env: Record<string, string | undefined> }): Trust {
  const sources: TrustSource[] = [];
  const extra = options.env.NODE_EXTRA_CA_CERTS;
  if (extra) {
    // Node already trusts these (read at process start); read here only to report them, and only when doctor asks:
    // parsing every certificate of a large bundle costs tens of milliseconds at start for nothing else. A broken file
    // is Node's warning, not ours.
    sources.push(lazySubjects('NODE_EXTRA_CA_CERTS', extra));
  }
  if (!options.caFile) return { secureContext: undefined, sources };
  const bundle = readPemBundle(options.caFile, 'network.caFile');
  // Without `ca`, createSecureContext starts from Node's default roots (bundled, NODE_EXTRA_CA_CERTS, OpenSSL's store
  // under --use-openssl-ca); addCACert adds to them.
  const secureContext = createSecureContext();
  for (const pem of bundle.pems) secureContext.context.addCACert(pem);
  sources.push({ kind: 'network.caFile', path: options.caFile, subjects: bundle.subjects });
  return { secureContext, sources };
}

/** A source whose subjects are read from its file the first time someone asks (then kept). */
function lazySubjects(kind: TrustSource['kind'], path: string): TrustSource {
  let subjects: string[] | undefined;
  return {
    kind,
    path,
    get subjects(): string[] {
      if (!subjects) {
        try {
          subjects = readPemBundle(path, kind).subjects;
        } catch {
          subjects = [];
        }
      }
      return subjects;
    },
  };
}
