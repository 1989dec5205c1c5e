import { describe, expect, it } from 'vitest';
import type { BotConfig } from '../../src/bot-config.js';
import { Authorizer, SlackUsergroupDirectory, type UsergroupsApi } from '../../src/slack/authorization.js';

const access: BotConfig['access'] = {
  allowedChannelIds: ['COPS'],
  requesterUserIds: ['UREQ'],
  requesterUsergroupIds: ['SREQ'],
  approverUserIds: ['UAPP'],
  approverUsergroupIds: ['SAPP'],
};

/** A usergroups API that counts calls and can be told to fail. */
function fakeApi(groups: Record<string, string[]>) {
  const api = {
    calls: 0,
    failWith: undefined as string | undefined,
    usergroups: {
      users: {
        list: async ({ usergroup }: { usergroup: string }) => {
          api.calls += 1;
          await new Promise((resolve) => setTimeout(resolve, 5));
          if (api.failWith) throw new Error(api.failWith);
          return { ok: true, users: groups[usergroup] ?? [] };
        },
      },
    },
  };
  return api satisfies UsergroupsApi;
}

describe('authorization', () => {
  it('lets requesters request only in the allowed channels; everyone anywhere when no channel is listed', async () => {
    const auth = new Authorizer(access, new SlackUsergroupDirectory(fakeApi({ SREQ: ['UGRP'] })));
    expect(await auth.canRequest('UREQ', 'COPS')).toEqual({ allowed: true });
    expect(await auth.canRequest('UGRP', 'COPS')).toEqual({ allowed: true });
    expect(await auth.canRequest('UREQ', 'CRANDOM')).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('<#COPS>'),
    });
    expect(await auth.canRequest('UAPP', 'COPS')).toMatchObject({ allowed: false });
    const open = new Authorizer(
      { ...access, allowedChannelIds: [] },
      new SlackUsergroupDirectory(fakeApi({})),
    );
    expect(await open.canRequest('UREQ', 'CRANDOM')).toEqual({ allowed: true });
  });

  it('never lets anyone approve their own run, approver or not', async () => {
    const auth = new Authorizer(
      { ...access, requesterUserIds: ['UBOTH'], approverUserIds: ['UBOTH', 'UAPP'] },
      new SlackUsergroupDirectory(fakeApi({})),
    );
    expect(await auth.canApprove('UBOTH', { requestedBy: 'UBOTH' })).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('second engineer'),
    });
    expect(await auth.canApprove('UAPP', { requestedBy: 'UBOTH' })).toEqual({ allowed: true });
    expect(await auth.canApprove('UREQ', { requestedBy: 'UBOTH' })).toMatchObject({ allowed: false });
  });

  it('lets requesters and approvers (by id or group) steer a run, nobody else', async () => {
    const auth = new Authorizer(access, new SlackUsergroupDirectory(fakeApi({ SAPP: ['UGAPP'] })));
    for (const user of ['UREQ', 'UAPP', 'UGAPP'])
      expect(await auth.canControl(user, 'abort')).toEqual({ allowed: true });
    expect(await auth.canControl('USTRANGER', 'abort')).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('abort'),
    });
  });

  it('asks Slack once for concurrent checks and caches the answer for a few minutes', async () => {
    let now = 0;
    const api = fakeApi({ SAPP: ['UGAPP'] });
    const auth = new Authorizer(
      access,
      new SlackUsergroupDirectory(api, { cacheMs: 60_000, now: () => now }),
    );
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => auth.canApprove('UGAPP', { requestedBy: 'UREQ' })),
    );
    expect(answers.every((a) => a.allowed)).toBe(true);
    expect(api.calls).toBe(1);
    now = 59_000;
    await auth.canApprove('UGAPP', { requestedBy: 'UREQ' });
    expect(api.calls).toBe(1);
    now = 61_000;
    await auth.canApprove('UGAPP', { requestedBy: 'UREQ' });
    expect(api.calls).toBe(2);
  });

  it('fails closed when Slack cannot say who is in a group, and says why', async () => {
    const api = fakeApi({ SAPP: ['UGAPP'] });
    api.failWith = 'An API error occurred: plan_upgrade_required';
    const auth = new Authorizer(access, new SlackUsergroupDirectory(api));
    expect(await auth.canApprove('UGAPP', { requestedBy: 'UREQ' })).toEqual({
      allowed: false,
      reason: expect.stringContaining('Could not check your membership of the approver user group SAPP'),
    });
    // A failure is not cached: once Slack answers, the member is let in.
    api.failWith = undefined;
    expect(await auth.canApprove('UGAPP', { requestedBy: 'UREQ' })).toEqual({ allowed: true });
    // Listed user ids never need Slack.
    api.failWith = 'down';
    expect(await auth.canApprove('UAPP', { requestedBy: 'UREQ' })).toEqual({ allowed: true });
  });
});
