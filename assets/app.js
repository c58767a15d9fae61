// Small progressive enhancements; the console works without this file.
document.addEventListener("click", (e) => {
  const close = e.target.closest(".toast-close");
  if (close) close.closest(".toast").remove();
  if (e.target.closest(".sidenav a")) document.getElementById("sidenav")?.classList.remove("open");
  const toggle = e.target.closest("[data-toggle-nav]");
  if (toggle) {
    const nav = document.getElementById("sidenav");
    const open = nav.classList.toggle("open");
    toggle.setAttribute("aria-expanded", String(open));
  }
});
document.addEventListener("change", (e) => {
  if (e.target.matches("[data-autosubmit]")) e.target.form.requestSubmit();
});
// Keep the navigation's highlight in step with boosted navigation, and close it on phones.
document.addEventListener("htmx:afterSettle", () => {
  const path = location.pathname;
  document.querySelectorAll(".sidenav a").forEach((a) => {
    const href = a.getAttribute("href");
    const active = href === "/" ? path === "/" : path.startsWith(href);
    a.classList.toggle("active", active);
    if (active) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  document.getElementById("sidenav")?.classList.remove("open");
});
// Success toasts fade after a while; errors and secrets stay until dismissed.
document.addEventListener("htmx:oobAfterSwap", () => {
  document.querySelectorAll(".toast-ok:not([data-timed])").forEach((t) => {
    t.dataset.timed = "1";
    setTimeout(() => t.remove(), 6000);
  });
});
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".js-hide").forEach((el) => (el.hidden = true));
});
// Pickers: a click on a suggestion fills the hidden id and the visible name.
document.addEventListener("click", (e) => {
  const item = e.target.closest(".lookup-item");
  if (!item) return;
  const target = item.dataset.pick;
  const hidden = document.getElementById(`${target}-id`);
  const input = document.querySelector(`[data-picker="${target}"]`);
  if (hidden) hidden.value = item.dataset.id;
  if (input) input.value = item.dataset.name;
  item.closest(".lookup").innerHTML = "";
});
// Clearing a picker's text clears its choice.
document.addEventListener("input", (e) => {
  const picker = e.target.dataset && e.target.dataset.picker;
  if (picker && e.target.value.trim() === "") {
    const hidden = document.getElementById(`${picker}-id`);
    if (hidden) hidden.value = "";
  }
});
// Person/company: show the fields that apply.
function syncKind(root) {
  const checked = root.querySelector("input[data-kind]:checked");
  if (!checked) return;
  root.querySelectorAll("[data-for-kind]").forEach((el) => {
    el.hidden = el.dataset.forKind !== checked.value;
  });
}
document.addEventListener("change", (e) => {
  if (e.target.matches("input[data-kind]")) syncKind(e.target.form);
  if (e.target.matches("[data-select-all]")) {
    e.target.closest("form").querySelectorAll("input[name=ids]").forEach((b) => (b.checked = e.target.checked));
  }
  if (e.target.matches("input[name=ids], [data-select-all]")) {
    const form = e.target.closest("form");
    const n = form.querySelectorAll("input[name=ids]:checked").length;
    const out = form.querySelector("[data-selected-count]");
    if (out) out.textContent = String(n);
    // Nothing to apply a bulk action to until a row is chosen.
    const apply = form.querySelector("[data-needs-selection]");
    if (apply) apply.disabled = n === 0;
  }
});
function enhance(root) {
  root.querySelectorAll("form").forEach(syncKind);
}
document.addEventListener("DOMContentLoaded", () => enhance(document));
document.addEventListener("htmx:afterSettle", (e) => enhance(e.target));
// ---------- pipeline board ----------
// Dropping a card (SortableJS) or choosing in its menu posts the move; the server
// answers with the refreshed board. A drop on a lost stage asks for the reason first.
function askLossReason(board) {
  const dialog = board.querySelector("#loss-dialog");
  return new Promise((resolve) => {
    if (!dialog || typeof dialog.showModal !== "function") return resolve(null);
    dialog.returnValue = "";
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "confirm" ? dialog.querySelector("select[name=reason]").value : null);
    }, { once: true });
    dialog.showModal();
  });
}
function reloadBoard(board) {
  htmx.ajax("GET", `/pipeline?${board.dataset.boardQuery || ""}`, { target: "#board", select: "#board", swap: "outerHTML" });
}
async function submitMove(card, stageId, kind) {
  const board = card.closest("#board");
  const form = card.querySelector(".move-menu");
  if (!form) return;
  if (kind === "lost") {
    const reason = await askLossReason(board);
    if (!reason) return reloadBoard(board);
    form.querySelector("input[name=loss_reason]").value = reason;
  }
  form.querySelector("select[name=stage]").value = stageId;
  htmx.trigger(form, "change");
}
document.addEventListener("change", (e) => {
  const select = e.target.closest && e.target.closest("select[data-move-select]");
  if (!select || select.dataset.confirmed) return;
  const option = select.selectedOptions[0];
  if (option && option.dataset.kind === "lost") {
    e.stopPropagation();
    const card = select.closest(".deal-card");
    submitMove(card, option.value, "lost");
  }
}, true);
function loadSortable(board) {
  if (window.Sortable) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = board.dataset.sortableSrc;
    s.integrity = board.dataset.sortableSri;
    s.crossOrigin = "anonymous";
    s.onload = resolve;
    s.onerror = reject;
    document.head.appendChild(s);
  });
}
function enhanceBoard(root) {
  const board = root.querySelector ? (root.id === "board" ? root : root.querySelector("#board")) : null;
  if (!board) return;
  loadSortable(board).then(() => {
    board.querySelectorAll("[data-sortable]").forEach((list) => {
      if (list.dataset.sortableReady) return;
      list.dataset.sortableReady = "1";
      window.Sortable.create(list, {
        group: "deals",
        animation: 150,
        filter: "select, a, input",
        preventOnFilter: false,
        onEnd: (evt) => {
          if (evt.from === evt.to) return;
          submitMove(evt.item, evt.to.dataset.stage, evt.to.dataset.kind);
        },
      });
    });
  });
}
document.addEventListener("DOMContentLoaded", () => enhanceBoard(document));
document.addEventListener("htmx:afterSettle", (e) => enhanceBoard(e.target.closest ? (e.target.closest("#board") || document) : document));
// ---------- quotes and deal contacts ----------
document.addEventListener("click", (e) => {
  if (e.target.matches("[data-add-line]")) {
    const body = e.target.closest("form").querySelector("[data-quote-lines]");
    const row = body.lastElementChild.cloneNode(true);
    row.querySelectorAll("input").forEach((i) => { i.value = i.name === "line_qty" ? "1" : (i.name === "line_discount" || i.name === "line_tax" ? "0" : ""); });
    body.appendChild(row);
  }
  if (e.target.matches("[data-remove-row]")) e.target.parentElement.remove();
  const pick = e.target.closest(".lookup-item[data-pick=contact]");
  if (pick) {
    const rows = document.querySelector("[data-contact-rows]");
    if (rows && !rows.querySelector(`input[value="${pick.dataset.id}"]`)) {
      const row = document.createElement("div");
      row.className = "row-form compact";
      row.innerHTML = `<input type="hidden" name="contact_id"><span></span><label><span class="sr-only">Role</span><input type="text" name="contact_role" maxlength="60" placeholder="Role, e.g. decision maker"></label><button type="button" class="chip-x" data-remove-row aria-label="Remove">×</button>`;
      row.querySelector("input[name=contact_id]").value = pick.dataset.id;
      row.querySelector("span").textContent = pick.dataset.name;
      rows.appendChild(row);
    }
    const input = document.querySelector('[data-picker="contact"]');
    if (input) input.value = "";
  }
});
// Contract documents go up as the raw body (no multipart parser needed server-side).
document.addEventListener("submit", async (e) => {
  const form = e.target.closest("form[data-upload]");
  if (!form) return;
  e.preventDefault();
  const file = form.querySelector("input[type=file]").files[0];
  if (!file) return;
  const token = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"];
  // Other fields of the form (preset, kind, …) ride along in the query string.
  const extra = new URLSearchParams();
  for (const el of form.querySelectorAll("select[name], input[name]:not([type=file])")) {
    if (el.type === "checkbox" && !el.checked) continue;
    extra.set(el.name, el.value);
  }
  const query = extra.toString() ? `&${extra}` : "";
  const res = await fetch(`${form.dataset.upload}?name=${encodeURIComponent(file.name)}${query}`, {
    method: "PUT",
    headers: { "X-CSRF-Token": token, "Content-Type": file.type || "application/octet-stream", "HX-Request": "true" },
    body: file,
  });
  const target = res.headers.get("HX-Redirect");
  if (target) location.href = target;
  else document.getElementById("toasts").insertAdjacentHTML("beforeend", await res.text());
});
// Plugin bundles go up as the raw body, like contract documents.
document.addEventListener("submit", async (e) => {
  const form = e.target.closest("form[data-plugin-upload]");
  if (!form) return;
  e.preventDefault();
  const file = form.querySelector("input[type=file]").files[0];
  if (!file) return;
  // An upgrade replaces a running plugin: say which, and what is kept, before going on.
  const head = await file.slice(0, 8192).text();
  const id = (head.match(/^id\s*=\s*"([^"]+)"/m) || [])[1];
  const version = (head.match(/^version\s*=\s*"([^"]+)"/m) || [])[1];
  const installed = id && document.querySelector(`[data-plugin-id="${CSS.escape(id)}"]`);
  if (installed && !confirm(`Upgrade ${installed.dataset.pluginName} from ${installed.dataset.pluginVersion} to ${version || "this bundle"}? Its settings, grants and stored data are kept.`)) return;
  const token = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"];
  const all = form.querySelector("input[name=grant_all]").checked ? "?grantAll=true" : "";
  const res = await fetch(`/admin/plugins/upload${all}`, {
    method: "PUT",
    headers: { "X-CSRF-Token": token, "Content-Type": "application/octet-stream", "HX-Request": "true" },
    body: file,
  });
  const target = res.headers.get("HX-Redirect");
  if (target) location.href = target;
  else document.getElementById("toasts").insertAdjacentHTML("beforeend", await res.text());
});
// Header search: the results list opens under the box; arrows move through it, Enter opens
// the highlighted result (or the full results page), Escape closes it.
(() => {
  const box = document.getElementById("global-search");
  const list = document.getElementById("search-results");
  if (!box || !list) return;
  const items = () => Array.from(list.querySelectorAll("a"));
  const open = (yes) => {
    list.classList.toggle("open", yes);
    box.setAttribute("aria-expanded", yes ? "true" : "false");
  };
  document.body.addEventListener("htmx:afterSwap", (e) => {
    if (e.target === list) open(list.innerHTML.trim() !== "" && box.value.trim() !== "");
  });
  box.addEventListener("input", () => { if (!box.value.trim()) { list.innerHTML = ""; open(false); } });
  box.addEventListener("keydown", (e) => {
    const all = items();
    if (e.key === "ArrowDown" && all.length) { e.preventDefault(); open(true); all[0].focus(); }
    else if (e.key === "Escape") { open(false); }
    else if (e.key === "Enter") {
      e.preventDefault();
      const first = all.find((a) => !a.classList.contains("search-all"));
      location.href = first ? first.href : `/search?q=${encodeURIComponent(box.value)}`;
    }
  });
  list.addEventListener("keydown", (e) => {
    const all = items();
    const at = all.indexOf(document.activeElement);
    if (e.key === "ArrowDown") { e.preventDefault(); (all[at + 1] || all[0]).focus(); }
    else if (e.key === "ArrowUp") { e.preventDefault(); if (at <= 0) box.focus(); else all[at - 1].focus(); }
    else if (e.key === "Escape") { open(false); box.focus(); }
  });
  document.addEventListener("click", (e) => { if (!e.target.closest("[data-search]")) open(false); });
  box.addEventListener("focus", () => { if (list.innerHTML.trim() && box.value.trim()) open(true); });
})();
// Export links take the list's current filters (htmx keeps them in the address bar).
document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-export]");
  if (a) a.href = a.dataset.export + location.search;
});
// Drop a file on an upload form to send it.
document.addEventListener("dragover", (e) => {
  const zone = e.target.closest("[data-dropzone]");
  if (!zone) return;
  e.preventDefault();
  zone.classList.add("dragging");
});
document.addEventListener("dragleave", (e) => {
  const zone = e.target.closest("[data-dropzone]");
  if (zone) zone.classList.remove("dragging");
});
document.addEventListener("drop", (e) => {
  const zone = e.target.closest("[data-dropzone]");
  if (!zone || !e.dataTransfer.files.length) return;
  e.preventDefault();
  zone.classList.remove("dragging");
  zone.querySelector("input[type=file]").files = e.dataTransfer.files;
  zone.requestSubmit();
});

// A role change asks first: the select posts on change, so a cancelled confirmation puts
// the old role back and the change never reaches htmx (this listener runs first, in the
// capture phase).
document.addEventListener('change', (e) => {
  const s = e.target;
  if (!(s instanceof HTMLSelectElement) || !s.dataset.confirm) return;
  const label = s.options[s.selectedIndex] ? s.options[s.selectedIndex].text : s.value;
  if (!window.confirm(s.dataset.confirm.replace('{role}', label))) {
    s.value = s.dataset.initial || s.value;
    e.stopImmediatePropagation();
  } else {
    s.dataset.initial = s.value;
  }
}, true);

// Phones: the client list's filters fold behind one button, and the bulk bar appears only
// once a row is chosen, so the first client is on the first screen.
document.addEventListener("click", (e) => {
  const t = e.target.closest("[data-toggle-filters]");
  if (!t) return;
  const open = t.closest("form").classList.toggle("open");
  t.setAttribute("aria-expanded", String(open));
});
document.addEventListener("change", (e) => {
  if (!e.target.matches("input[name=ids], [data-select-all]")) return;
  const bar = e.target.closest("form").querySelector("[data-bulk-bar]");
  if (bar) bar.classList.toggle("has-selection", !!e.target.closest("form").querySelector("input[name=ids]:checked"));
});

// The E-mail page on a wide screen: a conversation opens in the reading pane beside the
// list (its reply form included); on a phone, or with a modifier key, the link navigates.
document.addEventListener("click", (e) => {
  const link = e.target.closest && e.target.closest(".mail-link");
  const pane = document.getElementById("reading-pane");
  if (!link || !pane || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  if (!window.matchMedia("(min-width: 1100px)").matches) return;
  e.preventDefault();
  document.querySelectorAll(".mail-item.active").forEach((x) => x.classList.remove("active"));
  link.closest(".mail-item").classList.add("active");
  htmx.ajax("GET", link.getAttribute("href"), { target: "#reading-pane", select: "#mail-message", swap: "innerHTML" });
});
// Time zone: offer the device's own zone (when the list has it) with one click.
function offerZone() {
  const button = document.querySelector("[data-zone-detect]");
  const select = document.querySelector("[data-zone-select]");
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (!button || !select || !zone || select.value === zone) return;
  if (![...select.options].some((o) => o.value === zone)) return;
  button.textContent = `Use this device's zone (${zone.replaceAll("_", " ")})`;
  button.hidden = false;
  button.onclick = () => { select.value = zone; button.hidden = true; };
}
document.addEventListener("DOMContentLoaded", offerZone);
document.addEventListener("htmx:afterSettle", offerZone);
