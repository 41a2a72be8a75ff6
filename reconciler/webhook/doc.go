// Package webhook receives push webhooks from GitLab (opencode.de is one), GitHub,
// Gitea and Forgejo, verifies them and signals "fetch now" for one Git source.
//
// A [Receiver] is an [net/http.Handler]; the controller mounts one per Git source (for
// example at /hook/<name>), each with its own secret. What a request must carry, by
// provider (the first header of this list that is present decides the provider; a
// wrong signature in it is not rescued by a right one in a header further down):
//
//	provider  authentication header                            event header
//	forgejo   X-Forgejo-Signature: <hex HMAC-SHA256 of body>   X-Forgejo-Event (else X-Gitea-Event)
//	gitea     X-Gitea-Signature:   <hex HMAC-SHA256 of body>   X-Gitea-Event
//	github    X-Hub-Signature-256: sha256=<hex HMAC-SHA256>    X-GitHub-Event
//	gitlab    X-Gitlab-Token:      <the secret itself>         X-Gitlab-Event
//
// Forgejo also sends the Gitea headers and Gitea (like Forgejo) the GitHub event header,
// which is why the order matters. The HMAC key is the configured secret; the HMAC is
// taken over the raw body exactly as received. Every comparison is constant-time; the
// GitLab token is compared by its SHA-256, so not even its length leaks. GitHub's
// legacy SHA-1 header X-Hub-Signature alone is refused.
//
// Responses, in the order the checks run:
//
//	405  not POST (Gitea and Forgejo can be set to send GET: choose POST)
//	401  no authentication header; GitLab token wrong (checked before the body is read)
//	413  body larger than Config.MaxBodyBytes (default 1 MiB)
//	401  HMAC signature wrong or malformed
//	400  no event header for the provider
//	200  ping (GitHub), an event other than a push, or a push to a ref not in
//	     Config.Refs: acknowledged, nothing triggered
//	202  a push: Config.Trigger has been called, once, before the response is written
//
// So 202 means "a fetch was triggered", and every 2xx means "the sender did nothing
// wrong". Events we do not act on are acknowledged with 200 rather than refused with a
// 4xx, because GitLab disables a webhook that keeps failing (4xx included).
//
// Push events: GitHub, Gitea and Forgejo "push" (branches and tags); GitLab "Push Hook",
// "Tag Push Hook", and "System Hook" deliveries whose event_name is push or tag_push.
// After the signature holds, the payload (JSON, or form-encoded with a payload field)
// is read for ref and after only; a payload that cannot be read still triggers, with
// an empty Ref, because a trigger is only a hint to fetch. When Config.Refs is set, a
// push whose ref is known and not listed is acknowledged (200) without a trigger. A
// push that deletes a ref (after = all zeros) triggers with Deleted set.
//
// The trigger is advisory: the controller fetches the ref it is configured for and
// never trusts the event's commit, because webhook signatures carry no timestamp and a
// captured delivery can be replayed. A replay costs one fetch and changes nothing.
// [Signal] coalesces bursts of triggers into one pending "fetch now".
//
// Logging: a rejected request is logged at Warn with provider, reason, delivery id and
// remote address; an accepted one at Info with provider, ref, commit and delivery id.
// The payload, the secret, and the signature or token a request presented are never
// logged (a wrong token may be an old or mistyped secret).
//
// Metrics: with Config.Metrics every delivery is counted in
// platzwart_webhook_receipts_total by result (accepted, ignored, rejected) and a
// [Reason] from a fixed list, so what clients send cannot grow the label set.
package webhook
