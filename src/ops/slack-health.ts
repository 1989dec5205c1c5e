/**
 * Whether Slack's Web API is reachable, judged from the thread writer's own calls (no extra traffic):
 * any answer from Slack, even an error like `not_in_channel` or a 429, proves the connection; a
 * network error, a timeout or a 5xx since the last answer means it is down. Before any call it is
 * presumed reachable, so a quiet bot is not reported unready.
 */
import type { SlackCallObserver, SlackCallOutcome } from '../slack/slack-writer.js';

/** Platform errors by which Slack says it is itself in trouble. */
const SLACK_TROUBLE = new Set(['internal_error', 'fatal_error', 'service_unavailable', 'request_timeout']);

export class SlackApiHealth implements SlackCallObserver {
  #failing: { error: string; since: number } | undefined;

  constructor(readonly now: () => number = Date.now) {}

  callEnded(_call: 'post' | 'update', outcome: SlackCallOutcome): void {
    if (outcome.ok || slackAnswered(outcome.error)) {
      this.#failing = undefined;
      return;
    }
    this.#failing ??= { error: outcome.error, since: this.now() };
  }

  status(): { ok: boolean; detail: string } {
    if (!this.#failing) return { ok: true, detail: 'Web API answering' };
    const seconds = Math.round((this.now() - this.#failing.since) / 1000);
    return {
      ok: false,
      detail: `Web API failing for ${seconds} s (last: ${clipError(this.#failing.error)})`,
    };
  }
}

function slackAnswered(error: string): boolean {
  const status = /^HTTP (\d{3})$/.exec(error)?.[1];
  if (status) return Number(status) < 500;
  return /^[a-z][a-z_]{1,49}$/.test(error) && !SLACK_TROUBLE.has(error);
}

function clipError(error: string): string {
  return error.length <= 120 ? error : `${error.slice(0, 119)}…`;
}

/** One observer that tells several. */
export function allOf(...observers: SlackCallObserver[]): SlackCallObserver {
  return {
    callEnded(call, outcome) {
      for (const observer of observers) observer.callEnded(call, outcome);
    },
  };
}
