/**
 * The thread writer's Web API calls, counted: results, Slack's errors, retries and give-ups.
 */
import type { SlackCallObserver } from '../slack/slack-writer.js';
import type { Metrics } from './registry.js';

export function slackCallMetrics(metrics: Metrics): SlackCallObserver {
  return {
    callEnded(call, outcome) {
      if (outcome.ok) {
        metrics.slackCalls.inc({ call, result: 'ok' });
        return;
      }
      metrics.slackCalls.inc({ call, result: 'error' });
      metrics.slackErrors.inc({ error: slackErrorLabel(outcome.error) });
      if (outcome.retrying) metrics.slackRetries.inc();
      else metrics.slackDropped.inc();
    },
  };
}

/**
 * A bounded label: `HTTP 503` and Slack's platform codes (`not_in_channel`) as they are, anything
 * else (network errors and timeouts, whose text varies) as `request_error`.
 */
export function slackErrorLabel(error: string): string {
  if (/^HTTP \d{3}$/.test(error)) return error;
  if (/^[a-z][a-z_]{1,49}$/.test(error)) return error;
  return 'request_error';
}
