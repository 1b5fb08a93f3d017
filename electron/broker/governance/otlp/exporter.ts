import type { AnyValueMap } from '@opentelemetry/api-logs';
import type { LogRecordExporter, ReadableLogRecord } from '@opentelemetry/sdk-logs';
import type { Logger } from '../../util/log';
import type { LedgerUser, RecordInput } from '../ledger/record';

/** What status shows about the export to the collector. */
export interface OtlpStatus {
  endpoint: string;
  state: 'ok' | 'failing';
  exported: number;
  /** Records the collector did not take (refused, unreachable, timed out) or the full queue dropped. */
  failed: number;
  lastError?: string | undefined;
}

export interface OtlpExport {
  /** Queues one record (never blocks: a full queue drops the oldest work, counted in `failed`). */
  export(seq: number, input: RecordInput, user: LedgerUser | undefined): void;
  status(): OtlpStatus;
  close(): Promise<void>;
}

export interface OtlpOptions {
  endpoint: string;
  headers: Record<string, string>;
  log: Logger;
  /** Records held while the collector is slow or down (default 2,048); more are dropped and counted. */
  maxQueueSize?: number;
  /** One export's time limit (default 10 s): a collector that hangs costs a timeout, never a tool call. */
  timeoutMs?: number;
  /** How often batches go out (default 1 s). */
  delayMs?: number;
}

/**
 * Audit records as OpenTelemetry log records over OTLP/HTTP, with the OpenTelemetry JS SDK: a LoggerProvider whose
 * BatchLogRecordProcessor holds a bounded queue (records past it are dropped, never waited for) and exports in the
 * background with a timeout, so a collector that is down or hangs never slows a call. The ledger stays the record of
 * truth; the export is its copy off the machine. The SDK is imported only when a collector is configured.
 */
export async function createOtlpExport(options: OtlpOptions): Promise<OtlpExport> {
  const [{ LoggerProvider, BatchLogRecordProcessor }, { OTLPLogExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-logs'),
    import('@opentelemetry/exporter-logs-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const maxQueueSize = options.maxQueueSize ?? 2048;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const state: OtlpStatus = { endpoint: options.endpoint, state: 'ok', exported: 0, failed: 0 };
  let emitted = 0;
  let settled = 0;

  const inner = new OTLPLogExporter({ url: options.endpoint, headers: options.headers, timeoutMillis: timeoutMs });
  // Counts what the collector took, so status can say whether the export works.
  const exporter: LogRecordExporter = {
    export(records: ReadableLogRecord[], done: Parameters<LogRecordExporter['export']>[1]) {
      inner.export(records, (result) => {
        settled += records.length;
        if (result.code === 0) {
          state.exported += records.length;
          state.state = 'ok';
          state.lastError = undefined;
        } else {
          state.failed += records.length;
          state.state = 'failing';
          state.lastError = result.error?.message?.slice(0, 200) ?? 'export failed';
          options.log.warn('OTLP export failed', { endpoint: options.endpoint, records: records.length });
        }
        done(result);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush(),
  };
  const processor = new BatchLogRecordProcessor({
    exporter,
    maxQueueSize,
    maxExportBatchSize: Math.min(512, maxQueueSize),
    scheduledDelayMillis: options.delayMs ?? 1_000,
    exportTimeoutMillis: timeoutMs,
  });
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': 'lanyard', 'service.namespace': 'lanyard-audit' }),
    processors: [processor],
  });
  const logger = provider.getLogger('lanyard.audit');

  return {
    export(seq, input, user) {
      emitted++;
      const attributes: AnyValueMap = { 'lanyard.audit.seq': seq, 'lanyard.audit.type': input.type };
      for (const [k, v] of Object.entries(input)) {
        if (k === 'type') continue;
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') attributes[`lanyard.audit.${k}`] = v;
      }
      if (user) {
        attributes['enduser.id'] = user.sub;
        attributes['lanyard.audit.user.iss'] = user.iss;
        if (user.email) attributes['lanyard.audit.user.email'] = user.email;
      }
      logger.emit({
        timestamp: Date.now(),
        severityText: 'outcome' in input && input.outcome !== 'ok' ? 'WARN' : 'INFO',
        severityNumber: 'outcome' in input && input.outcome !== 'ok' ? 13 : 9,
        body: JSON.stringify({ seq, ...input, ...(user ? { user } : {}) }),
        attributes,
      });
    },
    status() {
      // What the bounded queue dropped never reached the exporter: the difference once nothing is in flight.
      const inFlight = emitted - settled;
      return inFlight > maxQueueSize + 512 ? { ...state, failed: state.failed + inFlight - maxQueueSize - 512 } : { ...state };
    },
    async close() {
      await Promise.race([provider.shutdown(), new Promise((resolve) => setTimeout(() => resolve(undefined), 2_000).unref())]).catch(
        () => undefined,
      );
    },
  };
}
