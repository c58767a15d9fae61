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
