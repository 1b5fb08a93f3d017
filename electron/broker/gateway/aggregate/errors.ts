// From the client package: the server one loads only with the first IDE session (the SDK server reads code, message
// and data of whatever a handler throws).
import { ProtocolError, ProtocolErrorCode } from '@modelcontextprotocol/client';
import type { CallToolResult } from '@modelcontextprotocol/server';
import { ErrorCodes, type ErrorInfo } from '../../../../shared/errors';
import { LanyardError, redactText } from '../../errors';
import { jsonRpcErrorFor, toolErrorText } from '../http-util';
import { classifyUpstreamError } from '../upstream/errors';

/**
 * A failed tools/call as the IDE sees it: a tool result with isError and a message that says what happened and what
 * to do (not a JSON-RPC error, which many IDEs show as a bare "tool failed").
 */
export function toolErrorResult(serverId: string, e: unknown): { result: CallToolResult; error: ErrorInfo } {
  const failure = classifyUpstreamError(serverId, e);
  if (failure.kind === 'protocol') {
    const message = `Server "${serverId}" rejected the call: ${redactText(failure.error.message).slice(0, 500)} (JSON-RPC error ${failure.error.code}).`;
    return {
      result: { content: [{ type: 'text', text: message }], isError: true },
      error: { code: ErrorCodes.INTERNAL, message, fix: 'Check the tool arguments; the server said what it expects.', serverId },
    };
  }
  const error =
    failure.kind === 'session-gone'
      ? new LanyardError(ErrorCodes.SERVER_UNREACHABLE, `Server "${serverId}" lost the session.`, 'Retry the call.', { serverId })
      : failure.error;
  const info = error.toInfo();
  return {
    result: { content: [{ type: 'text', text: toolErrorText(info) }], isError: true },
    error: info,
  };
}

/** Any other failed request (prompts/get, resources/read, ...): a JSON-RPC error that still carries code and fix. */
/** A request for a server that needs the IdP sign-in, while signed out: the same answer on every path of `/mcp`. */
export function notSignedInError(serverId: string, signInHint: string): ProtocolError {
  const error = jsonRpcErrorFor({
    code: ErrorCodes.NOT_SIGNED_IN,
    message: 'You are not signed in to Lanyard.',
    fix: signInHint,
    serverId,
  });
  return new ProtocolError(error.code, error.message, error.data);
}

export function toProtocolError(serverId: string, e: unknown): ProtocolError {
  const failure = classifyUpstreamError(serverId, e);
  if (failure.kind === 'protocol')
    return new ProtocolError(failure.error.code, redactText(failure.error.message).slice(0, 500), failure.error.data);
  const error =
    failure.kind === 'session-gone'
      ? new LanyardError(ErrorCodes.SERVER_UNREACHABLE, `Server "${serverId}" lost the session.`, 'Retry.', { serverId })
      : failure.error;
  const rpc = jsonRpcErrorFor({ ...error.toInfo(), serverId }, ProtocolErrorCode.InternalError);
  return new ProtocolError(rpc.code, rpc.message, rpc.data);
}
