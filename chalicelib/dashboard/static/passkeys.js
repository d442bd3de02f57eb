// Passkeys (WebAuthn): "Sign in with a passkey" on the log-in form, and the Passkeys card
// (add one under a name, see when each was used, remove one). The browser converts the
// server's JSON options and its own credentials (parse…FromJSON, toJSON); where it cannot,
// the passkey controls stay hidden. app.js lends its API client and screen helpers (`setUp`).

import { format, t } from "./i18n.js";

const $ = (selector, root = document) => root.querySelector(selector);
let app = null; // { api, keep, signedIn, formError, el, show, banner, user, access }

export const supported = () =>
  typeof PublicKeyCredential !== "undefined" &&
  typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
  typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";

// A refusal or a cancel in the browser's own dialog is said in the page's language.
function browserError(error) {
  if (error instanceof DOMException) return { key: error.name === "InvalidStateError" ? "passkeys.already" : "passkeys.cancelled" };
  return error;
}

// Whether this session passed a second factor (the access token's `mfa` claim).
function sessionPassedFactor() {
  try {
    const payload = app.access().split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    return JSON.parse(atob(payload)).mfa === true;
  } catch {
    return false;
  }
}

// Username-first when `username` is given, else discoverable: the authenticator offers its passkeys.
async function signIn(username) {
  const options = await app.api("login/passkey/options/", { method: "POST", body: username ? { username } : {}, auth: false });
  const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
  app.keep(await app.api("login/passkey/", { method: "POST", body: { credential: credential.toJSON() }, auth: false }));
}

async function onSignIn() {
  const form = $("#login-form");
  app.formError(form, null);
  try {
    await signIn(form.username.value.trim());
    form.reset();
    app.banner(null);
    await app.signedIn();
  } catch (error) {
    app.formError(form, browserError(error));
  }
}

async function onAdd(event) {
  event.preventDefault();
  const form = event.currentTarget;
  app.formError(form, null);
  try {
    const options = await app.api("passkeys/register/options/", { method: "POST", body: {} });
    const created = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) });
    await app.api("passkeys/", { method: "POST", body: { credential: created.toJSON(), name: form.name.value.trim() } });
    form.reset();
    const user = app.user();
    if ((user.is_staff || user.is_superuser) && !sessionPassedFactor()) {
      await signIn(user.username); // staff at first log-in: the new passkey is the second factor
    }
    app.banner("passkeys.added", "ok");
    await app.signedIn();
  } catch (error) {
    app.formError(form, browserError(error));
  }
}

async function onRemove(passkey) {
  const panel = $("#passkeys-panel");
  app.formError(panel, null);
  try {
    await app.api(`passkeys/${encodeURIComponent(passkey.id)}/`, { method: "DELETE" });
    app.banner("passkeys.removed", "ok");
    await app.signedIn();
  } catch (error) {
    app.formError(panel, error);
  }
}

function row(passkey) {
  const used = passkey.last_used_at ? t("passkeys.used", { when: format.when(passkey.last_used_at) }) : t("passkeys.unused");
  const named = t("passkeys.remove_named", { name: passkey.name });
  const remove = app.el("button", { type: "button", class: "quiet", "aria-label": named, onclick: () => onRemove(passkey) }, t("passkeys.remove"));
  return app.el(
    "li",
    {},
    app.el("strong", {}, passkey.name),
    " ",
    app.el("small", { class: "muted" }, `${t("passkeys.created", { when: format.when(passkey.created_at) })} · ${used}`),
    " ",
    remove,
  );
}

// The card's list, after sign-in and on a language switch (app.js shows the card where it belongs).
export async function render() {
  if (!supported()) return;
  const { items } = await app.api("passkeys/?limit=20");
  $("#passkey-list").replaceChildren(...items.map(row));
  $("#passkeys-empty").hidden = items.length > 0;
}

export function setUp(helpers) {
  app = helpers;
  app.show("#passkey-login", supported());
  $("#passkey-login").addEventListener("click", onSignIn);
  $("#passkey-form").addEventListener("submit", onAdd);
}
