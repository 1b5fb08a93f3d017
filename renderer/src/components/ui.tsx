/**
 * Small, accessible building blocks: buttons, the status dot, a switch, a code block with copy, a confirm dialog,
 * notices that carry an error's fix line.
 */
import { useEffect, useId, useRef, useState, type ButtonHTMLAttributes, type ReactNode } from 'react';
import type { ErrorInfo } from '../../../shared/errors';
import type { Tone } from '../model/servers';
import { Icon, type IconName } from './Icon';

type ButtonProps = ButtonHTMLAttributes<HTMLButtonElement> & {
  variant?: 'primary' | 'secondary' | 'ghost' | 'danger';
  size?: 'sm' | 'md' | 'lg';
  icon?: IconName;
  busy?: boolean;
};

export function Button({
  variant = 'secondary',
  size = 'md',
  icon,
  busy = false,
  children,
  className,
  disabled,
  type = 'button',
  ...rest
}: ButtonProps) {
  return (
    <button
      type={type}
      className={['btn', `btn-${variant}`, `btn-${size}`, className].filter(Boolean).join(' ')}
      disabled={disabled || busy}
      aria-busy={busy || undefined}
      {...rest}
    >
      {busy ? <span className="spinner" aria-hidden="true" /> : icon ? <Icon name={icon} /> : null}
      {children}
    </button>
  );
}

/** A coloured dot; the meaning is always also in text next to it (colour alone is not accessible). */
export function StatusDot({ tone, pulse = false }: { tone: Tone | 'warn'; pulse?: boolean }) {
  return <span className={`dot dot-${tone}${pulse ? ' dot-pulse' : ''}`} aria-hidden="true" />;
}

export function Switch({
  checked,
  onChange,
  label,
  disabled,
  busy,
}: {
  checked: boolean;
  onChange: (next: boolean) => void;
  label: string;
  disabled?: boolean;
  busy?: boolean;
}) {
  return (
    <button
      type="button"
      role="switch"
      aria-checked={checked}
      aria-label={label}
      className={`switch${checked ? ' on' : ''}`}
      disabled={disabled || busy}
      aria-busy={busy || undefined}
      onClick={() => onChange(!checked)}
    >
      <span className="switch-thumb" aria-hidden="true" />
    </button>
  );
}

/** Copies text without the Clipboard permission (the app denies every permission; a user-initiated copy needs none). */
function copyText(text: string): boolean {
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.append(area);
  area.select();
  let ok: boolean;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  return ok;
}

export function CodeBlock({ code, label }: { code: string; label: string }) {
  const [copied, setCopied] = useState<'idle' | 'copied' | 'failed'>('idle');
  useEffect(() => {
    if (copied === 'idle') return;
    const t = setTimeout(() => setCopied('idle'), 1800);
    return () => clearTimeout(t);
  }, [copied]);
  const copy = async () => {
    let ok: boolean;
    try {
      await navigator.clipboard.writeText(code);
      ok = true;
    } catch {
      ok = copyText(code);
    }
    setCopied(ok ? 'copied' : 'failed');
  };
  return (
    <div className="code">
      <pre tabIndex={0} aria-label={label}>
        <code>{code}</code>
      </pre>
      <Button size="sm" variant="ghost" className="code-copy" icon={copied === 'copied' ? 'check' : 'copy'} onClick={() => void copy()}>
        {copied === 'copied' ? 'Copied' : copied === 'failed' ? 'Select and copy' : 'Copy'}
      </Button>
      <span className="visually-hidden" aria-live="polite">
        {copied === 'copied' ? 'Copied to the clipboard' : ''}
      </span>
    </div>
  );
}

/** An error as the user needs it: what happened, and the one thing to do about it. */
export function ErrorNotice({
  error,
  title,
  onDismiss,
}: {
  error: Pick<ErrorInfo, 'message' | 'fix'>;
  title?: string;
  onDismiss?: () => void;
}) {
  return (
    <div className="notice notice-error" role="alert">
      <Icon name="alert" size={18} />
      <div className="notice-body">
        {title ? <strong className="notice-title">{title}</strong> : null}
        <p className="notice-text">{error.message}</p>
        {error.fix ? (
          <p className="notice-fix">
            <span className="fix-label">Fix</span> {error.fix}
          </p>
        ) : null}
      </div>
      {onDismiss ? (
        <button type="button" className="icon-btn" onClick={onDismiss} aria-label="Dismiss">
          <Icon name="x" />
        </button>
      ) : null}
    </div>
  );
}

export function Notice({
  tone,
  icon,
  title,
  children,
}: {
  tone: 'info' | 'ok' | 'warn' | 'error';
  icon?: IconName;
  title?: ReactNode;
  children?: ReactNode;
}) {
  return (
    <div className={`notice notice-${tone}`}>
      <Icon name={icon ?? (tone === 'ok' ? 'check' : tone === 'info' ? 'info' : 'alert')} size={18} />
      <div className="notice-body">
        {title ? <strong className="notice-title">{title}</strong> : null}
        {children}
      </div>
    </div>
  );
}

/** A modal confirmation on the native <dialog>: focus is trapped, Escape cancels, focus returns to the opener. */
export function ConfirmDialog({
  open,
  title,
  children,
  confirmLabel,
  danger = false,
  busy = false,
  onConfirm,
  onCancel,
}: {
  open: boolean;
  title: string;
  children: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (dialog === null) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog
      ref={ref}
      className="dialog"
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onCancel();
      }}
    >
      <h2 id={titleId} className="dialog-title">
        {title}
      </h2>
      <div className="dialog-body">{children}</div>
      <div className="dialog-actions">
        <Button onClick={onCancel} autoFocus>
          Cancel
        </Button>
        <Button variant={danger ? 'danger' : 'primary'} busy={busy} onClick={onConfirm}>
          {confirmLabel}
        </Button>
      </div>
    </dialog>
  );
}

export function Field({
  label,
  hint,
  error,
  children,
  id,
}: {
  label: string;
  hint?: ReactNode;
  error?: string | undefined;
  children: (ids: { id: string; describedBy: string | undefined }) => ReactNode;
  id?: string;
}) {
  const generated = useId();
  const fieldId = id ?? generated;
  const hintId = `${fieldId}-hint`;
  const errorId = `${fieldId}-error`;
  const describedBy = [hint ? hintId : '', error ? errorId : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`field${error ? ' field-invalid' : ''}`}>
      <label htmlFor={fieldId} className="field-label">
        {label}
      </label>
      {children({ id: fieldId, describedBy })}
      {hint ? (
        <p id={hintId} className="field-hint">
          {hint}
        </p>
      ) : null}
      {error ? (
        <p id={errorId} className="field-error">
          <Icon name="alert" size={14} /> {error}
        </p>
      ) : null}
    </div>
  );
}

export function Card({ children, className, ...rest }: { children: ReactNode; className?: string } & Record<string, unknown>) {
  return (
    <section className={['card', className].filter(Boolean).join(' ')} {...rest}>
      {children}
    </section>
  );
}

export function EmptyState({ icon, title, children }: { icon: IconName; title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <div className="empty-icon">
        <Icon name={icon} size={28} />
      </div>
      <h2 className="empty-title">{title}</h2>
      {children}
    </div>
  );
}
