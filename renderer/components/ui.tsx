/**
 * The console's small building blocks. Every control is a native button, link or input (so it
 * works by keyboard as is), every region is labelled, and state is never told by colour alone.
 */
import { createContext, useCallback, useContext, useEffect, useId, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';
import { adviceFor, toCallError } from '../api/client.js';
import type { CallError } from '../api/transport.js';

/** A screen's heading: focusable (not tabbable), so that moving to the screen can put the focus there. */
export function ScreenTitle({ children, lead }: { children: ReactNode; lead?: ReactNode }) {
  return (
    <div className="screen-head">
      <h1 tabIndex={-1}>{children}</h1>
      {lead ? <p className="lead">{lead}</p> : null}
    </div>
  );
}

export function Section({ title, actions, children, headingLevel = 2 }: { title: string; actions?: ReactNode; children: ReactNode; headingLevel?: 2 | 3 }) {
  const id = useId();
  const Heading = headingLevel === 2 ? 'h2' : 'h3';
  return (
    <section className="section" aria-labelledby={id}>
      <div className="section-head">
        <Heading id={id}>{title}</Heading>
        {actions ? <div className="actions">{actions}</div> : null}
      </div>
      {children}
    </section>
  );
}

export type Tone = 'ok' | 'warn' | 'bad' | 'info' | 'muted';

export function Badge({ tone, children, title }: { tone: Tone; children: ReactNode; title?: string }) {
  return (
    <span className={`badge badge-${tone}`} title={title}>
      {children}
    </span>
  );
}

const STATE_TONES: Record<string, Tone> = {
  ready: 'ok',
  active: 'ok',
  enforcing: 'ok',
  starting: 'info',
  'backing-off': 'warn',
  'crash-looping': 'bad',
  'needs-sign-in': 'warn',
  'signed-in': 'ok',
  'signing-in': 'info',
  stopped: 'muted',
  'signed-out': 'warn',
  expired: 'bad',
  unavailable: 'bad',
  misconfigured: 'bad',
  'fail-closed': 'bad',
  unmanaged: 'info',
  local: 'info',
};

export function StateBadge({ state, label }: { state: string; label?: string }) {
  return <Badge tone={STATE_TONES[state] ?? 'muted'}>{label ?? state}</Badge>;
}

export function Spinner({ label }: { label?: string }) {
  return (
    <span className="spinner" role={label ? 'status' : undefined} aria-label={label}>
      <span aria-hidden="true" className="spinner-dot" />
      {label ? <span className="visually-hidden">{label}</span> : null}
    </span>
  );
}

export function ErrorNote({ error, onRetry, context }: { error: CallError | Error | undefined; onRetry?: () => void; context?: string }) {
  if (!error) return null;
  const e = toCallError(error);
  const advice = adviceFor(e);
  return (
    <div className="note note-bad" role="alert">
      <p>
        <strong>{context ? `${context}: ` : ''}</strong>
        {e.message}
      </p>
      {advice ? <p className="advice">{advice}</p> : null}
      {onRetry ? (
        <button type="button" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

export function Notice({ tone = 'info', children }: { tone?: Tone; children: ReactNode }) {
  return <div className={`note note-${tone}`}>{children}</div>;
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

export function KeyValues({ items, label }: { items: [string, ReactNode][]; label?: string }) {
  return (
    <dl className="kv" aria-label={label}>
      {items.map(([k, v]) => (
        <div key={k} className="kv-row">
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

// --- Toasts ------------------------------------------------------------------------------------

interface Toast {
  id: number;
  tone: Tone;
  text: string;
}
const ToastContext = createContext<(tone: Tone, text: string) => void>(() => undefined);

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(1);
  const push = useCallback((tone: Tone, text: string) => {
    const id = next.current++;
    setToasts((t) => [...t.slice(-3), { id, tone, text }]);
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), tone === 'bad' ? 12_000 : 6000);
  }, []);
  return (
    <ToastContext.Provider value={push}>
      {children}
      <div className="toasts" role="status" aria-live="polite" aria-atomic="false">
        {toasts.map((t) => (
          <div key={t.id} className={`toast note-${t.tone}`}>
            {t.text}
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}

export function useToast(): (tone: Tone, text: string) => void {
  return useContext(ToastContext);
}

// --- Actions ------------------------------------------------------------------------------------

/**
 * A button for an operation that takes a while: it says what is happening while it runs (and is
 * marked busy for screen readers), then reports the outcome; a failure says what to do.
 */
export function ActionButton({
  run,
  label,
  busyLabel,
  done,
  className,
  disabled,
  describedBy,
  onError,
}: {
  run: () => Promise<unknown>;
  label: string;
  busyLabel: string;
  /** A toast on success; none when omitted. */
  done?: string | ((result: unknown) => string | undefined);
  className?: string;
  disabled?: boolean;
  describedBy?: string;
  onError?: (error: CallError) => void;
}) {
  const [busy, setBusy] = useState(false);
  const toast = useToast();
  const click = async () => {
    setBusy(true);
    try {
      const result = await run();
      const text = typeof done === 'function' ? done(result) : done;
      if (text) toast('ok', text);
    } catch (error) {
      const e = toCallError(error);
      if (onError) onError(e);
      else toast('bad', `${label} failed: ${e.message}${adviceFor(e) ? ` ${adviceFor(e)}` : ''}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <button type="button" className={className} onClick={() => void click()} disabled={disabled || busy} aria-busy={busy} aria-describedby={describedBy}>
      {busy ? (
        <>
          <Spinner /> {busyLabel}
        </>
      ) : (
        label
      )}
    </button>
  );
}

// --- Dialogs -----------------------------------------------------------------------------------

/** A modal dialog (the native <dialog>: focus stays inside, Escape closes it, focus returns after). */
export function Dialog({
  open,
  title,
  onClose,
  children,
  describedBy,
}: {
  open: boolean;
  title: string;
  onClose: () => void;
  children: ReactNode;
  describedBy?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) dialog.showModal();
    if (!open && dialog.open) dialog.close();
  }, [open]);
  return (
    <dialog ref={ref} className="dialog" aria-labelledby={id} aria-describedby={describedBy} onClose={onClose} onCancel={onClose}>
      <h2 id={id}>{title}</h2>
      {open ? children : null}
    </dialog>
  );
}

/** A button that asks before it acts. */
export function ConfirmButton({
  label,
  title,
  question,
  confirmLabel,
  busyLabel,
  run,
  done,
  danger = true,
  ariaLabel,
}: {
  label: string;
  /** What the button says to a screen reader when `label` alone is ambiguous (one per row). */
  ariaLabel?: string;
  title: string;
  question: ReactNode;
  confirmLabel: string;
  busyLabel: string;
  run: () => Promise<unknown>;
  done?: string;
  danger?: boolean;
}) {
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<CallError>();
  const id = useId();
  return (
    <>
      <button type="button" className={danger ? 'danger' : undefined} aria-label={ariaLabel} onClick={() => (setError(undefined), setOpen(true))}>
        {label}
      </button>
      <Dialog open={open} title={title} onClose={() => setOpen(false)} describedBy={id}>
        <div id={id}>{question}</div>
        <ErrorNote error={error} />
        <div className="dialog-actions">
          <ActionButton
            className={danger ? 'danger' : 'primary'}
            label={confirmLabel}
            busyLabel={busyLabel}
            run={async () => {
              await run();
              setOpen(false);
            }}
            {...(done ? { done } : {})}
            onError={setError}
          />
          <button type="button" onClick={() => setOpen(false)}>
            Cancel
          </button>
        </div>
      </Dialog>
    </>
  );
}

// --- Tabs --------------------------------------------------------------------------------------

/** ARIA tabs: arrow keys move between tabs, Home and End jump, the panel follows. */
export function Tabs({
  tabs,
  selected,
  onSelect,
  label,
  children,
}: {
  tabs: { id: string; label: string }[];
  selected: string;
  onSelect: (id: string) => void;
  label: string;
  children: ReactNode;
}) {
  const base = useId();
  const refs = useRef(new Map<string, HTMLButtonElement>());
  const keyDown = (event: KeyboardEvent<HTMLButtonElement>) => {
    const index = tabs.findIndex((t) => t.id === selected);
    let next = -1;
    if (event.key === 'ArrowRight') next = (index + 1) % tabs.length;
    else if (event.key === 'ArrowLeft') next = (index - 1 + tabs.length) % tabs.length;
    else if (event.key === 'Home') next = 0;
    else if (event.key === 'End') next = tabs.length - 1;
    if (next < 0) return;
    event.preventDefault();
    const tab = tabs[next]!;
    onSelect(tab.id);
    refs.current.get(tab.id)?.focus();
  };
  return (
    <div className="tabs">
      <div role="tablist" aria-label={label}>
        {tabs.map((t) => (
          <button
            key={t.id}
            ref={(el) => {
              if (el) refs.current.set(t.id, el);
            }}
            type="button"
            role="tab"
            id={`${base}-tab-${t.id}`}
            aria-selected={t.id === selected}
            aria-controls={`${base}-panel`}
            tabIndex={t.id === selected ? 0 : -1}
            onClick={() => onSelect(t.id)}
            onKeyDown={keyDown}
          >
            {t.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`${base}-panel`} aria-labelledby={`${base}-tab-${selected}`} tabIndex={0} className="tabpanel">
        {children}
      </div>
    </div>
  );
}

// --- Copy ---------------------------------------------------------------------------------------

export function CopyButton({ text, label }: { text: string; label: string }) {
  const toast = useToast();
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      toast('ok', `${label}: copied`);
    } catch {
      toast('warn', 'Copying was not allowed here: select the text and copy it with your keyboard.');
    }
  };
  return (
    <button type="button" onClick={() => void copy()}>
      Copy {label}
    </button>
  );
}

// --- Forms --------------------------------------------------------------------------------------

/** A label tied to its control by id (a wrapping label would give a select the text of its options too). */
export function Labeled({ label, children }: { label: string; children: (id: string) => ReactNode }) {
  const id = useId();
  return (
    <span className="labeled">
      <label htmlFor={id}>{label}</label> {children(id)}
    </span>
  );
}

/** A labelled field with its hint and its error, tied to the control for screen readers. */
export function Field({
  label,
  hint,
  error,
  children,
}: {
  label: string;
  hint?: ReactNode;
  error?: string;
  children: (props: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean }) => ReactNode;
}) {
  const id = useId();
  const hintId = hint ? `${id}-hint` : undefined;
  const errorId = error ? `${id}-error` : undefined;
  const describedBy = [hintId, errorId].filter(Boolean).join(' ') || undefined;
  return (
    <div className={`field${error ? ' field-invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, ...(describedBy ? { 'aria-describedby': describedBy } : {}), ...(error ? { 'aria-invalid': true } : {}) })}
      {hint ? (
        <p className="hint" id={hintId}>
          {hint}
        </p>
      ) : null}
      {error ? (
        <p className="field-error" id={errorId}>
          {error}
        </p>
      ) : null}
    </div>
  );
}
