/**
 * Who may do what (DESIGN.md I5, I8), by Slack user id, never by name: requesters request (in the
 * allowed channels), approvers approve other people's runs, either may steer a run. Every refusal
 * carries a reason phrased for the person who clicked.
 */
import type { BotConfig } from '../bot-config.js';
import { describeError } from '../errors.js';
import type { RunRecord } from '../queue/contracts.js';

export type Decision = { allowed: true } | { allowed: false; reason: string };
export type ControlAction = 'cancel' | 'abort' | 'continue' | 'resume' | 'finish';

export interface UsergroupDirectory {
  /** The user ids in a Slack user group; throws when Slack cannot say. */
  members(usergroupId: string): Promise<readonly string[]>;
}

/** The part of `WebClient` the directory uses. */
export interface UsergroupsApi {
  usergroups: {
    users: { list(args: { usergroup: string }): Promise<{ ok?: boolean; users?: string[]; error?: string }> };
  };
}

export const USERGROUP_CACHE_MS = 5 * 60_000;

/**
 * `usergroups.users.list` (Tier 2) cached a few minutes, and one call shared by concurrent clicks.
 * Failures are not cached: the next click asks again.
 */
export class SlackUsergroupDirectory implements UsergroupDirectory {
  readonly #cache = new Map<string, { users: readonly string[]; until: number }>();
  readonly #inFlight = new Map<string, Promise<readonly string[]>>();

  constructor(
    private readonly api: UsergroupsApi,
    private readonly options: { cacheMs?: number; now?: () => number } = {},
  ) {}

  members(usergroupId: string): Promise<readonly string[]> {
    const now = this.options.now?.() ?? Date.now();
    const cached = this.#cache.get(usergroupId);
    if (cached && cached.until > now) return Promise.resolve(cached.users);
    const pending = this.#inFlight.get(usergroupId);
    if (pending) return pending;
    const lookup = this.api.usergroups.users
      .list({ usergroup: usergroupId })
      .then((answer) => {
        const users = answer.users ?? [];
        this.#cache.set(usergroupId, { users, until: now + (this.options.cacheMs ?? USERGROUP_CACHE_MS) });
        return users;
      })
      .finally(() => this.#inFlight.delete(usergroupId));
    this.#inFlight.set(usergroupId, lookup);
    return lookup;
  }
}

type Role = 'requester' | 'approver';

export class Authorizer {
  constructor(
    private readonly access: BotConfig['access'],
    private readonly groups: UsergroupDirectory,
  ) {}

  /** Decided from the configuration alone, so it can be answered inside the slash command's ack. */
  channelAllowed(channelId: string): Decision {
    const allowed = this.access.allowedChannelIds;
    if (allowed.length === 0 || allowed.includes(channelId)) return { allowed: true };
    return {
      allowed: false,
      reason: `Cluster reboots can only be requested in ${allowed.map((id) => `<#${id}>`).join(', ')}.`,
    };
  }

  async canRequest(userId: string, channelId: string): Promise<Decision> {
    const channel = this.channelAllowed(channelId);
    if (!channel.allowed) return channel;
    const member = await this.#isMember(userId, 'requester');
    if (member === true) return { allowed: true };
    return {
      allowed: false,
      reason: member || 'You are not on the list of people who may request cluster reboots.',
    };
  }

  async canApprove(userId: string, run: Pick<RunRecord, 'requestedBy'>): Promise<Decision> {
    // Checked first and whatever the lists say: nobody approves their own run (I5).
    if (userId === run.requestedBy) {
      return { allowed: false, reason: 'You requested this run: a second engineer must approve it.' };
    }
    const member = await this.#isMember(userId, 'approver');
    if (member === true) return { allowed: true };
    return {
      allowed: false,
      reason: member || 'You are not on the list of people who may approve cluster reboots.',
    };
  }

  async canControl(userId: string, action: ControlAction): Promise<Decision> {
    if ((await this.#isMember(userId, 'requester')) === true) return { allowed: true };
    const approver = await this.#isMember(userId, 'approver');
    if (approver === true) return { allowed: true };
    return {
      allowed: false,
      reason: approver || `Only the people who may request or approve cluster reboots may ${action} a run.`,
    };
  }

  /** True, or `''` when not a member, or why membership could not be checked. */
  async #isMember(userId: string, role: Role): Promise<true | string> {
    const ids = role === 'requester' ? this.access.requesterUserIds : this.access.approverUserIds;
    if (ids.includes(userId)) return true;
    const groupIds =
      role === 'requester' ? this.access.requesterUsergroupIds : this.access.approverUsergroupIds;
    const failures: string[] = [];
    for (const groupId of groupIds) {
      try {
        if ((await this.groups.members(groupId)).includes(userId)) return true;
      } catch (error) {
        failures.push(`${groupId} (${describeError(error)})`);
      }
    }
    // Fail closed, and say so: an outage must not read as "you are not allowed".
    return failures.length === 0
      ? ''
      : `Could not check your membership of the ${role} user group ${failures.join(', ')}; try again in a minute.`;
  }
}
