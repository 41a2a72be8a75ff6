// Brings Stalwart's configuration objects to what the chart declares, through its
// JMAP management API (POST /jmap/, capabilities urn:ietf:params:jmap:core and
// urn:stalwart:jmap; methods x:<Object>/get and x:<Object>/set, as in
// stalwartlabs/stalwart@v0.16.18 tests/resources/scripts/stress_test_prepare.py).
// Idempotent: an object that exists (found by its name) is updated, a missing one is
// created; nothing is destroyed. Run by the chart's post-install/post-upgrade Job
// with Node.js from the web client's image. Environment: STALWART_URL (in-cluster
// base URL), STALWART_ADMIN_PASSWORD (the recovery administrator "admin"),
// OBJECTS_FILE (objects.json from the ConfigMap).
import { readFile } from "node:fs/promises";

const base = (process.env.STALWART_URL ?? "").replace(/\/+$/, "");
const password = process.env.STALWART_ADMIN_PASSWORD ?? "";
const objectsFile = process.env.OBJECTS_FILE ?? "/etc/platzwart/provision/objects.json";
if (!base || !password) {
  console.error("provision: STALWART_URL and STALWART_ADMIN_PASSWORD are required");
  process.exit(2);
}
const auth = "Basic " + Buffer.from(`admin:${password}`).toString("base64");
const using = ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"];

async function waitReady(deadlineMs) {
  const until = Date.now() + deadlineMs;
  for (;;) {
    try {
      const res = await fetch(`${base}/healthz/ready`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${base} is not ready`);
    await new Promise((r) => setTimeout(r, 3000));
  }
}

async function session() {
  const res = await fetch(`${base}/.well-known/jmap`, { headers: { Authorization: auth } });
  if (!res.ok) throw new Error(`JMAP session: HTTP ${res.status}`);
  const s = await res.json();
  const id = s.primaryAccounts?.["urn:stalwart:jmap"] ?? Object.keys(s.accounts ?? {})[0];
  if (!id) throw new Error("JMAP session lists no account");
  return id;
}

function client(accountId) {
  return async function call(method, args) {
    // The in-cluster URL, not the session's apiUrl (that one is the public host).
    const res = await fetch(`${base}/jmap/`, {
      method: "POST",
      headers: { Authorization: auth, "Content-Type": "application/json" },
      body: JSON.stringify({ using, methodCalls: [[method, { accountId, ...args }, "c"]] }),
    });
    if (!res.ok) throw new Error(`${method}: HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
    const [[name, payload]] = (await res.json()).methodResponses ?? [[]];
    if (name === "error") throw new Error(`${method}: ${JSON.stringify(payload)}`);
    for (const k of ["notCreated", "notUpdated"]) {
      if (payload?.[k] && Object.keys(payload[k]).length) {
        throw new Error(`${method}: ${k} ${JSON.stringify(payload[k])}`);
      }
    }
    return payload;
  };
}

// ensure makes one object of type match pick(object) and carry want.
async function ensure(call, type, pick, want, label) {
  const got = await call(`x:${type}/get`, { ids: null });
  const found = (got.list ?? []).find(pick);
  if (found) {
    await call(`x:${type}/set`, { update: { [found.id]: want } });
    console.log(`provision: ${type} ${label}: updated`);
    return found.id;
  }
  const res = await call(`x:${type}/set`, { create: { n: want } });
  console.log(`provision: ${type} ${label}: created`);
  return res.created.n.id;
}

async function singleton(call, type, want) {
  const got = await call(`x:${type}/get`, { ids: null });
  const id = got.list?.[0]?.id;
  if (!id) throw new Error(`${type}: no singleton`);
  await call(`x:${type}/set`, { update: { [id]: want } });
  console.log(`provision: ${type}: updated`);
}

async function main() {
  const o = JSON.parse(await readFile(objectsFile, "utf8"));
  await waitReady(10 * 60 * 1000);
  const call = client(await session());

  // The identity provider: the server's accounts are its users, created on their
  // first token (docs: stalw.art/docs/auth/directories/oidc). The directory is set
  // server-wide (Authentication.directoryId); the per-domain Domain.directoryId is an
  // enterprise property (resources/schema/schema.json: "enterprise": true).
  const directoryId = await ensure(call, "Directory",
    (d) => d["@type"] === "Oidc" && d.issuerUrl === o.directory.issuerUrl, o.directory, o.directory.issuerUrl);
  await singleton(call, "Authentication", { directoryId });
  const domainId = await ensure(call, "Domain", (d) => d.name === o.domain.name, o.domain, o.domain.name);
  await ensure(call, "DkimSignature",
    (d) => d.domainId === domainId && d.selector === o.dkim.selector, { ...o.dkim, domainId }, o.dkim.selector);
  let certificateId = null;
  if (o.certificate) {
    certificateId = await ensure(call, "Certificate",
      (c) => c.certificate?.filePath === o.certificate.certificate.filePath, o.certificate, "workplace");
  }
  await ensure(call, "NetworkListener", (l) => l.name === o.relayListener.name, o.relayListener, "relay");
  await singleton(call, "MtaStageRcpt", o.relayRule);
  // The web client calls JMAP from the browser at the mail host: CORS for its origin
  // only (Http.responseHeaders go on every response; OPTIONS is answered 204,
  // crates/http/src/request.rs).
  await singleton(call, "Http", o.http);
  const settings = { defaultHostname: o.hostname, defaultDomainId: domainId };
  if (certificateId) settings.defaultCertificateId = certificateId;
  await singleton(call, "SystemSettings", settings);
}

main().catch((err) => {
  console.error(`provision: ${err.message}`);
  process.exit(1);
});
