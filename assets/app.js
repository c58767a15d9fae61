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
  }
});
function enhance(root) {
  root.querySelectorAll("form").forEach(syncKind);
}
document.addEventListener("DOMContentLoaded", () => enhance(document));
document.addEventListener("htmx:afterSettle", (e) => enhance(e.target));
