import type { SecretLintCoreConfig } from '@secretlint/types';

/**
 * The outbound secret scan (docs/architecture.md, "Outbound secret scan"): the string values of a tools/call's
 * arguments, before they leave the machine, for high-confidence secrets —
 *   - the rules of secretlint's maintained recommended preset (private keys, AWS/GCP credentials, GitHub, GitLab,
 *     Slack, npm, OpenAI, Anthropic, SendGrid, … tokens, passwords in URLs);
 *   - two shapes that preset lacks: JSON Web Tokens and Stripe live keys;
 *   - the user's own secrets held in memory (the Lanyard local token, the IdP session's tokens, access tokens), by
 *     exact comparison.
 * A cheap prefilter (one regular expression per string) decides which strings the preset sees at all, so ordinary
 * arguments — code, prose, JSON — cost a walk and a regex test. Findings name the kind and the argument path, never the
 * value. The walk is bounded (depth, nodes, characters) and says what it did not cover.
 */

export interface SecretFinding {
  /** What was found, in words ("private key", "GitHub token"). */
  kind: string;
  /** Where: `arguments.files[2].content`. */
  path: string;
}

export interface ScanResult {
  findings: SecretFinding[];
  /** Set when the caps stopped the walk: what was not scanned. */
  unscanned?: string | undefined;
}

/** A secret Lanyard holds in memory, compared by value (never logged or returned). */
export interface KnownSecret {
  kind: string;
  value: string;
}

export interface ScanLimits {
  /** Nesting levels walked (default 64). */
  maxDepth: number;
  /** Values visited (default 100,000). */
  maxNodes: number;
  /** Characters of string values scanned in total (default 4 MiB). */
  maxChars: number;
  /** Strings handed to the preset per call (default 32; each costs about 0.3 ms). */
  maxCandidates: number;
}

export const DEFAULT_SCAN_LIMITS: ScanLimits = { maxDepth: 64, maxNodes: 100_000, maxChars: 4 * 1024 * 1024, maxCandidates: 32 };

/**
 * Anything any rule could match starts with one of these (the preset's prefixes, PEM headers, user:password@ URLs).
 * A string without one is not given to the preset.
 */
const PREFILTER =
  /-----BEGIN|\bA(?:KIA|SIA|GPA|IDA|ROA|NPA|NVA|3T)[A-Z0-9]{12}|aws_?secret|AWS_?SECRET|\bgh[pousr]_|github_pat_|\bgl[a-z]{2,5}-|xox[a-z]-|hooks\.slack\.com|\b[sr]k_(?:live|test)_|\bsk-|eyJ[\w-]{8,}\.|AIza|\bnpm_|\bSG\.|:\/\/[^\s/:@'"]+:[^\s/@'"]+@|\bhf_|lin_api_|\bsecret_|\bntn_|\bshp(?:at|ss|ca|pa)_|\bdapi|dckr_pat_|figd_|\bhv[sb]\.|\bops_|\bgsk_|glsa_|glc_|private_key|vercel_|\bvc[pkira]_/;

/** Shapes the preset has no rule for. */
const OWN_RULES: Array<{ kind: string; pattern: RegExp }> = [
  { kind: 'JSON Web Token', pattern: /\beyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]{16,}/ },
  { kind: 'Stripe live key', pattern: /\b[sr]k_live_[0-9A-Za-z]{20,}/ },
];

/** The preset's rule ids, as a person reads them. */
const KIND_BY_RULE: Record<string, string> = {
  aws: 'AWS credentials',
  gcp: 'Google Cloud credentials',
  privatekey: 'private key',
  github: 'GitHub token',
  gitlab: 'GitLab token',
  slack: 'Slack token',
  npm: 'npm token',
  basicauth: 'password in a URL',
  'database-connection-string': 'database password',
  openai: 'OpenAI API key',
  anthropic: 'Anthropic API key',
  groq: 'Groq API key',
  huggingface: 'Hugging Face token',
  linear: 'Linear API key',
  notion: 'Notion token',
  sendgrid: 'SendGrid API key',
  shopify: 'Shopify token',
  grafana: 'Grafana token',
  '1password': '1Password token',
  'hashicorp-vault': 'HashiCorp Vault token',
  databricks: 'Databricks token',
  docker: 'Docker Hub token',
  figma: 'Figma token',
  vercel: 'Vercel token',
};

function kindOfRule(ruleId: string): string {
  const short = ruleId.replace(/^@secretlint\/secretlint-rule-/, '');
  return KIND_BY_RULE[short] ?? `${short} secret`;
}

interface Candidate {
  value: string;
  path: () => string;
}

type Lint = (content: string) => Promise<string[]>;

let presetLint: Promise<Lint> | undefined;

/** secretlint and its preset, loaded on the first string that passes the prefilter (not at broker start). */
function loadPreset(): Promise<Lint> {
  presetLint ??= (async () => {
    const [{ lintSource }, { creator }] = await Promise.all([
      import('@secretlint/core'),
      import('@secretlint/secretlint-rule-preset-recommend'),
    ]);
    const config: SecretLintCoreConfig = { rules: [{ id: creator.meta.id, rule: creator }] };
    return async (content: string) => {
      const result = await lintSource({
        source: { content, filePath: '/arguments.txt', contentType: 'text' },
        options: { config, maskSecrets: true, noPhysicFilePath: true },
      });
      return result.messages.map((m) => m.ruleId);
    };
  })();
  return presetLint;
}

export class SecretScanner {
  private readonly limits: ScanLimits;

  constructor(private readonly options: { known?: () => readonly KnownSecret[]; limits?: Partial<ScanLimits> } = {}) {
    this.limits = { ...DEFAULT_SCAN_LIMITS, ...options.limits };
  }

  /**
   * Scans `args` (a tools/call's `arguments`). Synchronous when no string passes the prefilter (the common case),
   * else a promise for the preset's verdict.
   */
  scan(args: unknown, root = 'arguments'): ScanResult | Promise<ScanResult> {
    const findings: SecretFinding[] = [];
    const candidates: Candidate[] = [];
    const known = this.known();
    const limits = this.limits;
    let nodes = 0;
    let chars = 0;
    let tooDeep: string | undefined;
    let tooMany = false;
    let charsSkipped = 0;

    type Frame = { value: unknown; depth: number; path: () => string };
    const stack: Frame[] = [{ value: args, depth: 0, path: () => root }];
    while (stack.length) {
      const { value, depth, path } = stack.pop()!;
      if (++nodes > limits.maxNodes) {
        tooMany = true;
        break;
      }
      if (typeof value === 'string') {
        if (chars >= limits.maxChars) {
          charsSkipped += value.length;
          continue;
        }
        const text = value.length + chars > limits.maxChars ? value.slice(0, limits.maxChars - chars) : value;
        charsSkipped += value.length - text.length;
        chars += text.length;
        this.checkString(text, path, known, findings, candidates);
        continue;
      }
      if (typeof value !== 'object' || value === null) continue;
      if (depth >= limits.maxDepth) {
        tooDeep ??= path();
        continue;
      }
      if (Array.isArray(value)) {
        for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], depth: depth + 1, path: () => `${path()}[${i}]` });
      } else {
        const keys = Object.keys(value);
        for (let i = keys.length - 1; i >= 0; i--) {
          const key = keys[i]!;
          stack.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1, path: () => `${path()}${propertyPath(key)}` });
        }
      }
    }

    const notes: string[] = [];
    if (tooDeep) notes.push(`values nested deeper than ${limits.maxDepth} levels (first at ${tooDeep})`);
    if (tooMany) notes.push(`values after the first ${limits.maxNodes.toLocaleString('en-US')}`);
    if (charsSkipped)
      notes.push(`${charsSkipped.toLocaleString('en-US')} characters past the first ${limits.maxChars.toLocaleString('en-US')}`);
    if (candidates.length > limits.maxCandidates)
      notes.push(`${candidates.length - limits.maxCandidates} strings that looked like secrets past the first ${limits.maxCandidates}`);
    const unscanned = notes.length ? `not scanned: ${notes.join('; ')}` : undefined;
    if (!candidates.length) return { findings, unscanned };
    return this.lintCandidates(candidates.slice(0, limits.maxCandidates), findings, unscanned);
  }

  private known(): readonly KnownSecret[] {
    try {
      return this.options.known?.() ?? [];
    } catch {
      return [];
    }
  }

  private checkString(
    text: string,
    path: () => string,
    known: readonly KnownSecret[],
    findings: SecretFinding[],
    candidates: Candidate[],
  ): void {
    if (text.length < 8) return;
    for (const k of known) {
      if (k.value.length >= 16 && text.length >= k.value.length && text.includes(k.value)) {
        findings.push({ kind: k.kind, path: path() });
        return;
      }
    }
    if (!PREFILTER.test(text)) return;
    for (const rule of OWN_RULES) {
      if (rule.pattern.test(text)) {
        findings.push({ kind: rule.kind, path: path() });
        return;
      }
    }
    candidates.push({ value: text, path });
  }

  private async lintCandidates(candidates: Candidate[], findings: SecretFinding[], unscanned: string | undefined): Promise<ScanResult> {
    const lint = await loadPreset();
    for (const c of candidates) {
      const rules = await lint(c.value);
      if (rules.length) findings.push({ kind: kindOfRule(rules[0]!), path: c.path() });
    }
    return { findings, unscanned };
  }
}

/** `.name`, or `["odd key"]` for a key that is not an identifier (the key is the user's data, so it is cut short). */
function propertyPath(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) && key.length <= 64 ? `.${key}` : `[${JSON.stringify(key.slice(0, 64))}]`;
}
