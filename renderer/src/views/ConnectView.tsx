/** Connect an IDE: the exact config for each IDE (HTTP or stdio), a Connect button, and which IDEs are connected. */
import { useRef, useState, type KeyboardEvent } from 'react';
import type { IdeName } from '../../../shared/contract';
import type { ErrorInfo } from '../../../shared/errors';
import type { ViewContext } from '../view-context';
import { errorInfoOf } from '../api/bridge';
import { Icon } from '../components/Icon';
import { PageHeader } from '../components/Layout';
import { Button, Card, CodeBlock, ErrorNotice, Notice, StatusDot } from '../components/ui';
import { relativeTime } from '../model/format';
import { defaultTransport, ideInfo, IDES, ideSnippet, isIdeConnected, TOKEN_PLACEHOLDER, type Transport } from '../model/snippets';
import { ProfileEditor } from './ProfileEditor';

type ConnectResult = Awaited<ReturnType<ViewContext['client']['api']['connectIde']>>;

export function ConnectView({ ctx }: { ctx: ViewContext }) {
  const { status } = ctx;
  const [ide, setIde] = useState<IdeName>('cursor');
  const [transport, setTransport] = useState<Transport>(defaultTransport('cursor'));
  const [connecting, setConnecting] = useState(false);
  const [result, setResult] = useState<ConnectResult>();
  const [failure, setFailure] = useState<ErrorInfo>();
  const tabs = useRef<Array<HTMLButtonElement | null>>([]);
  const info = ideInfo(ide);
  const effective: Transport = info.transports.includes(transport) ? transport : defaultTransport(ide);
  const snippet = ideSnippet(ide, effective, status.gateway.url);

  const choose = (next: IdeName) => {
    setIde(next);
    setTransport(defaultTransport(next));
    setResult(undefined);
    setFailure(undefined);
  };

  // Arrow keys move between tabs (WAI-ARIA tabs pattern, automatic activation).
  const onTabKey = (event: KeyboardEvent, index: number) => {
    const delta = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
    const target =
      event.key === 'Home' ? 0 : event.key === 'End' ? IDES.length - 1 : delta !== 0 ? (index + delta + IDES.length) % IDES.length : -1;
    if (target < 0) return;
    event.preventDefault();
    const next = IDES[target];
    if (next) {
      choose(next.ide);
      tabs.current[target]?.focus();
    }
  };

  const connect = async () => {
    setConnecting(true);
    setFailure(undefined);
    setResult(undefined);
    try {
      setResult(await ctx.client.api.connectIde({ ide, stdio: effective === 'stdio' }));
    } catch (e) {
      setFailure(errorInfoOf(e));
    } finally {
      setConnecting(false);
    }
  };

  return (
    <div className="page">
      <PageHeader
        title="Connect an IDE"
        subtitle="Every IDE talks to one local endpoint; Lanyard reaches every server behind it with your sign-in."
      />

      <Card className="endpoint">
        <div className="endpoint-main">
          <span className="endpoint-label">Local MCP endpoint</span>
          <code className="endpoint-url">{status.gateway.url}</code>
        </div>
        <span className={`badge ${status.gateway.running ? 'badge-ok' : 'badge-busy'}`}>
          <StatusDot tone={status.gateway.running ? 'ok' : 'busy'} /> {status.gateway.running ? 'Running' : 'Not running'}
        </span>
        <div className="endpoint-sessions">
          {status.ideSessions.length === 0 ? (
            <span className="muted">No IDE connected yet.</span>
          ) : (
            <ul className="session-list" aria-label="Connected IDE sessions">
              {status.ideSessions.map((s) => (
                <li key={s.id}>
                  <StatusDot tone="ok" /> <strong>{s.clientName}</strong>
                  {s.clientVersion ? <span className="muted"> {s.clientVersion}</span> : null}
                  <span className="muted">
                    {' '}
                    · {s.transport} · active {relativeTime(s.lastSeenAt, ctx.now)}
                  </span>
                </li>
              ))}
            </ul>
          )}
        </div>
      </Card>

      <div className="ide-panel card">
        <div className="tabs" role="tablist" aria-label="IDE">
          {IDES.map((item, index) => {
            const connected = isIdeConnected(item.ide, status.ideSessions);
            return (
              <button
                key={item.ide}
                ref={(el) => {
                  tabs.current[index] = el;
                }}
                type="button"
                role="tab"
                id={`tab-${item.ide}`}
                aria-selected={item.ide === ide}
                aria-controls="ide-tabpanel"
                tabIndex={item.ide === ide ? 0 : -1}
                className={`tab${item.ide === ide ? ' active' : ''}`}
                onClick={() => choose(item.ide)}
                onKeyDown={(e) => onTabKey(e, index)}
              >
                {item.name}
                {connected ? <Icon name="check" size={13} label="connected" className="tab-check" /> : null}
              </button>
            );
          })}
        </div>
        <div className="tabpanel" role="tabpanel" id="ide-tabpanel" aria-labelledby={`tab-${ide}`}>
          <div className="tabpanel-head">
            <div>
              <div className="muted small">{info.kind === 'command' ? 'Run in a terminal' : 'Add to'}</div>
              <div className="mono">{info.kind === 'command' ? 'Claude Code CLI' : info.location}</div>
            </div>
            {info.transports.length > 1 ? (
              <div className="segmented" role="radiogroup" aria-label="Transport">
                {info.transports.map((t) => (
                  <button
                    key={t}
                    type="button"
                    role="radio"
                    aria-checked={effective === t}
                    className={effective === t ? 'active' : ''}
                    onClick={() => setTransport(t)}
                  >
                    {t === 'http' ? 'HTTP' : 'stdio'}
                  </button>
                ))}
              </div>
            ) : null}
          </div>
          <CodeBlock code={snippet} label={`${info.name} configuration`} />
          {effective === 'http' ? (
            <p className="hint">
              <Icon name="key" size={13} /> <code>{TOKEN_PLACEHOLDER}</code> stands for Lanyard’s local token, which this page never shows.{' '}
              <strong>Connect</strong> writes the config with the real token for you; or use stdio, which needs no token.
            </p>
          ) : (
            <p className="hint">
              <Icon name="info" size={13} /> <code>lanyard stdio</code> bridges the IDE to the running Lanyard; it reads the local token
              itself.
              {info.note ? ` ${info.note}` : ''}
            </p>
          )}
          <div className="form-actions form-actions-left">
            <Button variant="primary" icon="plug" busy={connecting} onClick={() => void connect()}>
              Connect {info.name}
            </Button>
          </div>
          {failure ? (
            <ErrorNotice title={`Could not connect ${info.name} automatically`} error={failure} onDismiss={() => setFailure(undefined)} />
          ) : null}
          {result ? (
            <Notice tone="ok" title={result.changed ? `${info.name} is configured` : `${info.name} was already configured`}>
              <p className="notice-text">
                Wrote <code>{result.configPath}</code>
                {result.backupPath ? (
                  <>
                    {' '}
                    (backup: <code>{result.backupPath}</code>)
                  </>
                ) : null}
                . Restart or reload {info.name}; it shows up above once it connects.
              </p>
            </Notice>
          ) : null}
          <ProfileEditor ctx={ctx} ide={ide} ideName={info.name} />
        </div>
      </div>
    </div>
  );
}
