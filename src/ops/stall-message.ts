/**
 * The stall alarm's message in a run's thread: who should look (requester and approver, mentioned
 * so they are notified), for how long nothing happened, and the last step seen. Once progress
 * resumes, the same message is updated to say so (an update notifies nobody).
 */
import type { KnownBlock } from '@slack/types';
import { formatDuration } from '../errors.js';
import type { SlackMessage } from '../slack/blocks.js';
import { clip, escapeText, SLACK_LIMITS, slackTime } from '../slack/blocks.js';
import type { ActiveRun } from './active-runs.js';

export const STALL_ALARM_TITLE = 'Stall alarm';

const mention = (id: string) => `<@${id.replace(/[^A-Z0-9]/gi, '')}>`;

export function stallAlertMessage(active: ActiveRun, stalledMs: number): SlackMessage {
  const { run } = active;
  const who = [run.requestedBy, run.approvedBy]
    .filter((id): id is string => Boolean(id))
    .filter((id, index, all) => all.indexOf(id) === index)
    .map(mention)
    .join(' ');
  const quiet = formatDuration(stalledMs);
  const text = `${STALL_ALARM_TITLE}: no progress on ${run.cluster} for ${quiet}. ${who} please check.`;
  const lines = [
    `:rotating_light: *${STALL_ALARM_TITLE}: no progress on \`${escapeText(run.cluster)}\` for ${quiet}.* ${who} please check.`,
    `Last step: ${lastStep(active)}.`,
    'Nothing was stopped: the run goes on as soon as this step completes. Abort is on the run message.',
  ];
  return { text, blocks: [section(lines.join('\n'))] };
}

export function stallResolvedMessage(active: ActiveRun, stalledMs: number): SlackMessage {
  const quiet = formatDuration(stalledMs);
  const text = `${STALL_ALARM_TITLE} over: ${active.run.cluster} made progress again after ${quiet}.`;
  return {
    text,
    blocks: [
      section(
        `:white_check_mark: *${STALL_ALARM_TITLE} over:* \`${escapeText(active.run.cluster)}\` made progress again after ${quiet} (${lastStep(active)}).`,
      ),
    ],
  };
}

function lastStep(active: ActiveRun): string {
  const last = active.lastEvent;
  if (!last) return `run started ${slackTime(new Date(active.startedAt).toISOString())}`;
  const what = last.type.replace(/_/g, ' ');
  const where = last.host ? ` on \`${escapeText(last.host)}\`` : '';
  return `${what}${where} at ${slackTime(new Date(last.at).toISOString())}`;
}

function section(text: string): KnownBlock {
  return { type: 'section', text: { type: 'mrkdwn', text: clip(text, SLACK_LIMITS.text) } };
}
