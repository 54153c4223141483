// At start-up: what can this token read? `/v1/acl/token/self` names the token and its policies
// (never the secret) where ACLs are on, says "ACL support disabled" (401) where they are off,
// and "ACL not found" (403) for a token Consul does not know — reported at once as permission
// denied rather than discovered through empty answers.

import * as z from "../../../../lib/answer-schema.ts";
import { classifyAnswer, ConsulAnswerError } from "../../../../lib/consul-answer.ts";
import { consulRequest, type ConsulHttp } from "../../../../lib/consul-client.ts";
import type { Logger } from "../../../../lib/log.ts";

const anonymousAccessor = "00000000-0000-0000-0000-000000000002";
const tokenShape = z.object({
  AccessorID: z.string(),
  Description: z.optional(z.string()),
  Policies: z.optional(z.nullable(z.array(z.object({ Name: z.string() })))),
});

export type TokenCheck =
  | { result: "acls-off" }
  | { result: "token"; accessor: string; anonymous: boolean; policies: string[] }
  | { result: "denied"; error: ConsulAnswerError }
  | { result: "unknown"; message: string };

export async function checkToken(client: ConsulHttp, signal: AbortSignal): Promise<TokenCheck> {
  const raw = await consulRequest(client, {
    path: "/v1/acl/token/self",
    signal,
    headersTimeoutMs: 5_000,
  }).catch((err: Error) => err);
  if (!(raw instanceof Error) && raw.status === 401 && /ACL support disabled/i.test(raw.body)) {
    return { result: "acls-off" };
  }
  const a = classifyAnswer(raw, tokenShape);
  if (a.kind === "ok") {
    return {
      result: "token",
      accessor: a.value.AccessorID,
      anonymous: a.value.AccessorID === anonymousAccessor,
      policies: (a.value.Policies ?? []).map((p) => p.Name),
    };
  }
  if (a.kind === "denied") {
    return {
      result: "denied",
      error: new ConsulAnswerError(
        "denied",
        client.token
          ? `the token (CONSUL_HTTP_TOKEN) cannot be used: ${a.message}`
          : `no token given (CONSUL_HTTP_TOKEN) and Consul's ACLs refuse anonymous reads: ${a.message}`,
        { status: a.status },
      ),
    };
  }
  return { result: "unknown", message: a.message };
}

/** Logs what checkToken found; a denied token is reported to `onDenied`. */
export function reportToken(t: TokenCheck, log: Logger, onDenied: (err: ConsulAnswerError) => void): void {
  switch (t.result) {
    case "acls-off":
      log.info("Consul ACLs are off: every read is allowed");
      break;
    case "token":
      if (t.anonymous) {
        log.warn(
          "no Consul token (CONSUL_HTTP_TOKEN): the anonymous token's rules apply; with default_policy deny it reads nothing",
          { policies: t.policies },
        );
      } else {
        log.info("Consul token in use", { accessor: t.accessor, policies: t.policies });
      }
      break;
    case "denied":
      onDenied(t.error);
      break;
    case "unknown":
      log.debug("could not check the Consul token at start-up", { reason: t.message });
      break;
  }
}
