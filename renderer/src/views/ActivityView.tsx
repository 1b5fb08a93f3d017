/** Activity: recent tool calls, token and sign-in events, live. Names, codes and durations only — never a secret. */
import { useState } from 'react';
import type { ActivityEvent } from '../../../shared/contract';
import type { ViewContext } from '../view-context';
import type { LiveState } from '../api/client';
import { Icon, type IconName } from '../components/Icon';
import { PageHeader } from '../components/Layout';
import { EmptyState, StatusDot } from '../components/ui';
import { ACTIVITY_FILTERS, activityCounts, activityRowModel, filterActivity, type ActivityFilter } from '../model/activity';
import { AuditPanel } from './AuditPanel';

const KIND_ICON: Record<ActivityEvent['kind'], IconName> = {
  tool_call: 'tool',
  token: 'key',
  session: 'user',
  server: 'servers',
  ide: 'plug',
};

export function ActivityView({ ctx, events, live }: { ctx: ViewContext; events: ActivityEvent[]; live: LiveState }) {
  const [filter, setFilter] = useState<ActivityFilter>('all');
  const counts = activityCounts(events);
  const shown = filterActivity(events, filter);
  return (
    <div className="page">
      <PageHeader
        title="Activity"
        subtitle="Recent tool calls, tokens and sign-ins on this machine. Arguments, results and tokens are never recorded."
        actions={
          <span className={`live live-${live}`}>
            <StatusDot tone={live === 'live' ? 'ok' : 'busy'} pulse={live === 'live'} />{' '}
            {live === 'live' ? 'Live' : live === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
          </span>
        }
      />
      <AuditPanel ctx={ctx} />
      <div className="chips" role="toolbar" aria-label="Filter activity">
        {ACTIVITY_FILTERS.map((f) => (
          <button
            key={f.id}
            type="button"
            className={`chip${filter === f.id ? ' active' : ''}`}
            aria-pressed={filter === f.id}
            onClick={() => setFilter(f.id)}
          >
            {f.label}
            <span className="chip-count">{counts[f.id]}</span>
          </button>
        ))}
      </div>
      {shown.length === 0 ? (
        <EmptyState icon="activity" title={events.length === 0 ? 'Nothing yet' : 'Nothing of this kind'}>
          <p>Sign-ins, new tokens and your IDEs’ tool calls appear here as they happen.</p>
        </EmptyState>
      ) : (
        <ol className="activity card" aria-label="Recent activity">
          {shown.map((event) => {
            const row = activityRowModel(event, ctx.now);
            return (
              <li key={row.id} className={`activity-row outcome-${row.outcome}`}>
                <time className="activity-time" dateTime={row.iso} title={row.iso}>
                  <span>{row.time}</span>
                  <span className="muted small">{row.ago}</span>
                </time>
                <span className={`kind kind-${row.kind}`} title={row.kindLabel}>
                  <Icon name={KIND_ICON[row.kind]} size={14} />
                  <span>{row.kindLabel}</span>
                </span>
                <div className="activity-main">
                  <span className="activity-summary">{row.summary}</span>
                  {row.error ? (
                    <span className="activity-fix">
                      <span className="fix-label">Fix</span> {row.error.fix}
                    </span>
                  ) : null}
                </div>
                <span className="activity-meta">
                  {row.serverId ? <code className="tag">{row.serverId}</code> : null}
                  {row.duration ? <span className="muted small">{row.duration}</span> : null}
                </span>
                <span className={`outcome outcome-${row.outcome}`}>
                  <Icon
                    name={row.outcome === 'ok' ? 'check' : row.outcome === 'error' ? 'alert' : 'info'}
                    size={15}
                    label={row.outcomeLabel}
                  />
                </span>
              </li>
            );
          })}
        </ol>
      )}
    </div>
  );
}
