/**
 * What a server id may be. One rule for the config schema, the control contract, the gateway's routes, the CLI and
 * the dashboard, because the id is used verbatim in all of them: the relay path `/mcp/<id>`, the tool-name prefix
 * `<id>__tool` (which must fit the 64-character tool-name limit IDEs enforce, see docs/architecture.md "Gateway"),
 * keychain entry names `server:<id>:…`, and IDE config entries.
 */
export const SERVER_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,31}$/;

/** The rule in words, for error messages. */
export const SERVER_ID_RULE = "1-32 characters of a-z, 0-9 and '-', starting with a letter or digit";

export function isServerId(value: string): boolean {
  return SERVER_ID_PATTERN.test(value);
}
