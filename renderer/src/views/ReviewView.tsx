/**
 * Review: tool changes Lanyard holds back until a person looks at them (a server changed or added a tool, or the
 * injection scan flagged one). Each tool shows its approved and new definition side by side; Approve shows it to IDEs
 * again, Reject keeps that version hidden.
 */
import { useCallback, useEffect, useState } from 'react';
import type { ToolReview } from '../../../shared/contract';
import type { ErrorInfo } from '../../../shared/errors';
import { errorInfoOf } from '../api/bridge';
import { PageHeader } from '../components/Layout';
import { Button, EmptyState, ErrorNotice, Notice } from '../components/ui';
import { reviewTitle, reviewToolModel, type ReviewToolModel } from '../model/review';
import type { ViewContext } from '../view-context';

export function ReviewView({ ctx }: { ctx: ViewContext }) {
  const [reviews, setReviews] = useState<ToolReview[]>();
  const [error, setError] = useState<ErrorInfo>();
  const [busy, setBusy] = useState<string>();
  const pending = ctx.status.pendingToolReviews ?? 0;

  const load = useCallback(async () => {
    try {
      setReviews(await ctx.client.api.toolReviews({}));
      setError(undefined);
    } catch (e) {
      setError(errorInfoOf(e));
    }
  }, [ctx.client]);

  // The status push carries the count: a change there (a server changed a tool, another surface approved) reloads.
  useEffect(() => {
    void load();
  }, [load, pending]);

  const decide = async (review: ToolReview, verdict: 'approve' | 'reject') => {
    setBusy(`${review.id}:${verdict}`);
    try {
      const input = { serverId: review.serverId, tools: review.tools.map((t) => t.name) };
      const result = verdict === 'approve' ? await ctx.client.api.approveTools(input) : await ctx.client.api.rejectTools(input);
      ctx.notify('ok', `${verdict === 'approve' ? 'Approved' : 'Rejected'} ${result.tools.join(', ')} of ${review.serverId}.`);
      await load();
      ctx.refresh();
    } catch (e) {
      setError(errorInfoOf(e));
    } finally {
      setBusy(undefined);
    }
  };

  return (
    <div className="page">
      <PageHeader
        title="Review tool changes"
        subtitle="Lanyard pins every tool it shows your IDEs. A tool a server changes or adds, or whose description hides instructions for the AI, stays hidden until you decide."
      />
      {error ? <ErrorNotice error={error} onDismiss={() => setError(undefined)} /> : null}
      {reviews === undefined ? null : reviews.length === 0 ? (
        <EmptyState icon="check" title="Nothing to review">
          <p>Every tool your IDEs see is the version you (or your administrator) approved.</p>
        </EmptyState>
      ) : (
        reviews.map((review) => (
          <section key={review.id} className="card review" aria-label={reviewTitle(review)}>
            <header className="review-head">
              <div>
                <h2 className="review-title">{reviewTitle(review)}</h2>
                <p className="muted small">{review.summary}</p>
              </div>
              <div className="review-actions">
                <Button
                  variant="danger"
                  size="sm"
                  busy={busy === `${review.id}:reject`}
                  disabled={!review.approvable || busy !== undefined}
                  onClick={() => void decide(review, 'reject')}
                >
                  Reject
                </Button>
                <Button
                  variant="primary"
                  size="sm"
                  busy={busy === `${review.id}:approve`}
                  disabled={!review.approvable || busy !== undefined}
                  onClick={() => void decide(review, 'approve')}
                >
                  {review.tools.length > 1 ? `Approve all ${review.tools.length}` : 'Approve'}
                </Button>
              </div>
            </header>
            {!review.approvable ? (
              <Notice tone="info" icon="lock">
                Your administrator&apos;s managed configuration pins these tools; ask your IT team to approve the new version.
              </Notice>
            ) : null}
            {review.tools.map((tool) => (
              <ToolDiff key={tool.name} model={reviewToolModel(tool)} />
            ))}
          </section>
        ))
      )}
    </div>
  );
}

function ToolDiff({ model }: { model: ReviewToolModel }) {
  return (
    <div className="review-tool">
      <div className="review-tool-head">
        <code className="tag">{model.name}</code>
        <span className="chip-static">{model.label}</span>
        {model.fields ? <span className="muted small">{model.fields}</span> : null}
      </div>
      {model.findings.length ? (
        <ul className="review-findings" aria-label="What the injection scan found">
          {model.findings.map((f, i) => (
            <li key={i}>
              <strong>{f.field}</strong>: {f.detail}
            </li>
          ))}
        </ul>
      ) : null}
      <div className="diff" role="table" aria-label={`Approved and new definition of ${model.name}`}>
        <div className="diff-row diff-headings" role="row">
          <span role="columnheader">{model.newOnly ? 'Approved: none (a new tool)' : 'Approved'}</span>
          <span role="columnheader">New</span>
        </div>
        {model.rows.map((row, i) => (
          <div key={i} className={`diff-row diff-${row.kind}`} role="row">
            <pre role="cell" className="diff-left">
              {row.left ?? ''}
            </pre>
            <pre role="cell" className="diff-right">
              {row.right ?? ''}
            </pre>
          </div>
        ))}
      </div>
    </div>
  );
}
