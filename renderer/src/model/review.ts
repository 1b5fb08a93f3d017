/**
 * The Review page's logic: the side-by-side rows of each tool's old and new definition, and the words for what
 * happened. Pure (unit-tested without a DOM).
 */
import type { ToolReview, ToolReviewTool } from '../../../shared/contract';
import { diffLines, type DiffRow } from '../../../shared/line-diff';

export const CHANGE_LABEL: Record<ToolReviewTool['change'], string> = {
  changed: 'Changed',
  added: 'New tool',
  'first-use': 'Flagged at first sight',
  unpinned: 'Not pinned by your administrator',
};

export interface ReviewToolModel {
  name: string;
  label: string;
  fields: string;
  findings: ToolReviewTool['findings'];
  rows: DiffRow[];
  /** No earlier version to compare with (a new tool): the right side alone. */
  newOnly: boolean;
}

export function reviewToolModel(tool: ToolReviewTool): ReviewToolModel {
  return {
    name: tool.name,
    label: CHANGE_LABEL[tool.change],
    fields: tool.fields.length ? `Changed: ${tool.fields.join(', ')}` : '',
    findings: tool.findings,
    rows: diffLines(tool.before ?? '', tool.after),
    newOnly: tool.before === undefined,
  };
}

/** The one-line headline of an item, e.g. "todo › create_issue" or "todo: whole catalog (12 tools)". */
export function reviewTitle(review: ToolReview): string {
  return review.kind === 'catalog'
    ? `${review.serverId}: whole catalog (${review.tools.length} tools)`
    : `${review.serverId} › ${review.tools[0]?.name ?? ''}`;
}

/** "3 tools to review" (the tray, the sidebar badge, the Servers notice); '' when nothing waits. */
export function reviewCountText(count: number | undefined): string {
  if (!count) return '';
  return `${count} tool${count === 1 ? '' : 's'} to review`;
}
