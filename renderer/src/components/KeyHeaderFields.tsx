/**
 * The header-name and API-key inputs of an API-key server, shared by the add-server form and the "Set key" form on the
 * Servers page so both say the same thing about where the key goes. The key input is a password field: a key typed
 * here is never shown back.
 */
import { KEY_HEADER_SUGGESTIONS } from '../model/add-server';
import { Field } from './ui';

export interface KeyHeaderFieldsProps {
  headerName: string;
  keyValue: string;
  onHeaderName: (value: string) => void;
  onKeyValue: (value: string) => void;
  headerError?: string | undefined;
  keyError?: string | undefined;
  /** Focus the key input on mount (the Servers page's form opens for that one field). */
  autoFocusKey?: boolean;
}

export function KeyHeaderFields(props: KeyHeaderFieldsProps) {
  const effectiveHeader = props.headerName.trim() || KEY_HEADER_SUGGESTIONS[0];
  return (
    <>
      <Field
        label="Header"
        hint={`The HTTP header the server reads its key from (${KEY_HEADER_SUGGESTIONS[0]} if left empty).`}
        error={props.headerError}
      >
        {({ id, describedBy }) => (
          <>
            <input
              id={id}
              className="input mono"
              list={`${id}-suggestions`}
              placeholder={KEY_HEADER_SUGGESTIONS[0]}
              value={props.headerName}
              spellCheck={false}
              autoComplete="off"
              aria-describedby={describedBy}
              aria-invalid={props.headerError ? true : undefined}
              onChange={(e) => props.onHeaderName(e.target.value)}
            />
            <datalist id={`${id}-suggestions`}>
              {KEY_HEADER_SUGGESTIONS.map((h) => (
                <option key={h} value={h} />
              ))}
            </datalist>
          </>
        )}
      </Field>
      <Field
        label="API key"
        hint={
          effectiveHeader.toLowerCase() === 'authorization'
            ? 'Include the scheme, e.g. “Bearer …”. Stored in the OS keychain only, never in a file, and never shown again.'
            : 'Stored in the OS keychain only, never in a file, and never shown again.'
        }
        error={props.keyError}
      >
        {({ id, describedBy }) => (
          <input
            id={id}
            className="input mono"
            type="password"
            autoComplete="off"
            spellCheck={false}
            autoFocus={props.autoFocusKey}
            value={props.keyValue}
            aria-describedby={describedBy}
            aria-invalid={props.keyError ? true : undefined}
            onChange={(e) => props.onKeyValue(e.target.value)}
          />
        )}
      </Field>
    </>
  );
}
