/**
 * The tool profile of one IDE (Connect view): which servers and tools it sees, its favourites and its tool budget.
 * Past the budget the IDE is shown its favourites plus `lanyard_search_tools` and `lanyard_call_tool`, which reach
 * every other tool it may use. Saved through the control contract (`setProfile`); connected sessions of that IDE are
 * told to list their tools again.
 */
import { useEffect, useMemo, useState } from 'react';
import type { IdeName, ToolProfile } from '../../../shared/contract';
import type { ErrorInfo } from '../../../shared/errors';
import type { ViewContext } from '../view-context';
import { errorInfoOf } from '../api/bridge';
import { Icon } from '../components/Icon';
import { Button, ErrorNotice, Notice, Switch } from '../components/ui';

type ToolRow = { name: string; description?: string | undefined };

const ref = (serverId: string, tool: string) => `${serverId}/${tool}`;

export function ProfileEditor({ ctx, ide, ideName }: { ctx: ViewContext; ide: IdeName; ideName: string }) {
  const servers = useMemo(() => ctx.status.servers.filter((s) => s.enabled), [ctx.status.servers]);
  const [profile, setProfile] = useState<ToolProfile>();
  const [tools, setTools] = useState<Record<string, ToolRow[]>>({});
  const [budget, setBudget] = useState('');
  const [deniedServers, setDeniedServers] = useState<Set<string>>(new Set());
  const [deniedTools, setDeniedTools] = useState<Set<string>>(new Set());
  const [favourites, setFavourites] = useState<string[]>([]);
  const [open, setOpen] = useState<string>();
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState(false);
  const [failure, setFailure] = useState<ErrorInfo>();

  const apply = (p: ToolProfile) => {
    setProfile(p);
    setBudget(String(p.budget));
    setDeniedServers(new Set(p.servers.deny ?? []));
    setDeniedTools(new Set(p.tools.deny ?? []));
    setFavourites(p.favourites);
  };

  useEffect(() => {
    let live = true;
    setSaved(false);
    setFailure(undefined);
    ctx.client.api
      .getProfiles({})
      .then((all) => {
        const p = all.find((x) => x.ide === ide);
        if (live && p) apply(p);
      })
      .catch((e: unknown) => live && setFailure(errorInfoOf(e)));
    return () => {
      live = false;
    };
  }, [ctx.client, ide]);

  useEffect(() => {
    let live = true;
    for (const s of servers) {
      ctx.client.api
        .listTools({ id: s.id })
        .then((list) => live && setTools((t) => ({ ...t, [s.id]: list.map((x) => ({ name: x.name, description: x.description })) })))
        .catch(() => undefined);
    }
    return () => {
      live = false;
    };
  }, [ctx.client, servers]);

  if (!profile) return null;
  const locked = profile.managed;
  const visible = servers.reduce(
    (n, s) => (deniedServers.has(s.id) ? n : n + (tools[s.id] ?? []).filter((t) => !deniedTools.has(ref(s.id, t.name))).length),
    0,
  );
  const budgetNumber = Number(budget);
  const overBudget = budgetNumber > 0 && visible > budgetNumber;
  const toggle = (set: Set<string>, key: string, on: boolean) => {
    const next = new Set(set);
    if (on) next.delete(key);
    else next.add(key);
    return next;
  };

  const save = async () => {
    setSaving(true);
    setSaved(false);
    setFailure(undefined);
    try {
      apply(
        await ctx.client.api.setProfile({
          ide,
          budget: Number.isFinite(budgetNumber) ? Math.trunc(budgetNumber) : 0,
          favourites,
          servers: { deny: [...deniedServers] },
          tools: { deny: [...deniedTools] },
        }),
      );
      setSaved(true);
    } catch (e) {
      setFailure(errorInfoOf(e));
    } finally {
      setSaving(false);
    }
  };

  const reset = async () => {
    setFailure(undefined);
    try {
      apply(await ctx.client.api.setProfile({ ide, reset: true }));
      setSaved(true);
    } catch (e) {
      setFailure(errorInfoOf(e));
    }
  };

  return (
    <section className="profile-editor" aria-labelledby="profile-title">
      <div className="profile-head">
        <h3 id="profile-title">Tools {ideName} sees</h3>
        <span className={`badge ${overBudget ? 'badge-busy' : 'badge-ok'}`}>
          {visible} tool{visible === 1 ? '' : 's'}
          {budgetNumber > 0 ? ` · budget ${budgetNumber}` : ' · no budget'}
        </span>
      </div>
      {locked ? (
        <Notice tone="info" title="Set by your administrator">
          <p className="notice-text">This profile comes from the managed configuration and cannot be changed here.</p>
        </Notice>
      ) : null}
      <div className="profile-budget">
        <label htmlFor="profile-budget" className="field-label">
          Tool budget
        </label>
        <input
          id="profile-budget"
          className="input"
          type="number"
          min={0}
          max={1000}
          value={budget}
          disabled={locked}
          onChange={(e) => setBudget(e.target.value)}
          aria-describedby="profile-budget-hint"
        />
        <p id="profile-budget-hint" className="field-hint">
          {profile.ideMaxTools !== undefined ? `${ideName} gives its agent at most ${profile.ideMaxTools} tools. ` : ''}
          {overBudget
            ? `Over budget: ${ideName} sees your favourites plus lanyard_search_tools and lanyard_call_tool, which reach the other ${visible - favourites.length}.`
            : '0 = no budget. Names are shortened to ' + `${profile.maxNameLength} characters for ${ideName}.`}
        </p>
      </div>
      <ul className="profile-servers" aria-label="Servers and tools">
        {servers.map((s) => {
          const serverOn = !deniedServers.has(s.id);
          const list = tools[s.id] ?? [];
          return (
            <li key={s.id} className="profile-server">
              <div className="profile-row">
                <Switch
                  checked={serverOn}
                  label={`${s.name}: visible to ${ideName}`}
                  disabled={locked}
                  onChange={(on) => setDeniedServers(toggle(deniedServers, s.id, on))}
                />
                <button
                  type="button"
                  className="profile-server-name"
                  aria-expanded={open === s.id}
                  onClick={() => setOpen(open === s.id ? undefined : s.id)}
                >
                  <strong>{s.name}</strong> <span className="muted">· {list.length} tools</span>
                  <Icon name="chevron" size={13} className={open === s.id ? 'rotate-90' : 'rotate-0'} />
                </button>
              </div>
              {open === s.id ? (
                <ul className="profile-tools" aria-label={`${s.name} tools`}>
                  {list.map((t) => {
                    const key = ref(s.id, t.name);
                    const favourite = favourites.includes(key);
                    return (
                      <li key={key} className="profile-row">
                        <Switch
                          checked={serverOn && !deniedTools.has(key)}
                          label={`${t.name}: visible`}
                          disabled={locked || !serverOn}
                          onChange={(on) => setDeniedTools(toggle(deniedTools, key, on))}
                        />
                        <button
                          type="button"
                          className={`star${favourite ? ' on' : ''}`}
                          aria-pressed={favourite}
                          aria-label={`${t.name}: favourite`}
                          disabled={locked}
                          onClick={() => setFavourites(favourite ? favourites.filter((f) => f !== key) : [...favourites, key])}
                        >
                          {favourite ? '★' : '☆'}
                        </button>
                        <span className="mono">{t.name}</span>
                        {t.description ? <span className="muted small profile-desc">{t.description}</span> : null}
                      </li>
                    );
                  })}
                </ul>
              ) : null}
            </li>
          );
        })}
      </ul>
      <div className="form-actions form-actions-left">
        <Button variant="primary" icon="check" busy={saving} disabled={locked} onClick={() => void save()}>
          Save profile
        </Button>
        <Button variant="ghost" disabled={locked || !profile.customized} onClick={() => void reset()}>
          Back to {ideName} defaults
        </Button>
      </div>
      {saved ? (
        <Notice tone="ok" title="Profile saved">
          <p className="notice-text">Connected {ideName} sessions are told to list their tools again.</p>
        </Notice>
      ) : null}
      {failure ? <ErrorNotice title="Could not save the profile" error={failure} onDismiss={() => setFailure(undefined)} /> : null}
    </section>
  );
}
