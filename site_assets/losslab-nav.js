// Loss Functions, Live: the drawers and header buttons, for touch and for the keyboard.

// The drawer each button opened from the keyboard (see below), by the drawer's id.
const DRAWERS = { "pst-primary-sidebar-modal": null, "pst-secondary-sidebar-modal": null };

// Following a link in a drawer (the chapter list or "On this page" on a phone) closes the
// drawer, so the reader sees the section the link went to; its button does not take focus
// back, as the reader goes on from that section.
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("dialog[open] a[href]");
  if (link) link.closest("dialog").close();
});

// A keyboard reader keeps their place. The book theme takes focus off the menu, contents,
// colour-mode and search buttons whenever they are clicked, so that a mouse click leaves no
// tooltip standing; a press of Enter or Space is a click too (one with `detail` 0), so
// focus fell to the top of the page, and a drawer closed with Escape handed it back to the
// page instead of to the button that opened it. Only for a press of a key, focus goes back
// to that button: at once where no drawer opened, and otherwise when its drawer closes.
const BLURRED = ".primary-toggle, .secondary-toggle, .theme-switch-button, .search-button";
const focusLost = () => !document.activeElement || document.activeElement === document.body;

document.addEventListener("click", (event) => {
  if (!event.target.closest) return;
  // Seen first, before any handler of the page's can stop it (hence the capture phase).
  const link = event.target.closest("dialog[open] a[href]");
  if (link) DRAWERS[link.closest("dialog").id] = null;
  const button = event.target.closest(BLURRED);
  if (!button || event.detail !== 0) return;
  if (button.matches(".primary-toggle")) DRAWERS["pst-primary-sidebar-modal"] = button;
  else if (button.matches(".secondary-toggle")) DRAWERS["pst-secondary-sidebar-modal"] = button;
  // Where no drawer opened (the colour-mode button; the menu button on a wide screen,
  // which hides and shows the chapter list in place), focus would be lost at once.
  setTimeout(() => { if (focusLost() && button.isConnected) button.focus(); }, 0);
}, true);

for (const id of Object.keys(DRAWERS)) {
  const drawer = document.getElementById(id);
  if (!drawer) continue;
  drawer.addEventListener("close", () => {
    const opener = DRAWERS[id];
    DRAWERS[id] = null;
    if (!opener) return;
    setTimeout(() => { if (focusLost() && opener.isConnected) opener.focus(); }, 0);
  });
}

// A header button's tooltip, shown while the button has keyboard focus, goes away with
// Escape (WCAG 1.4.13: content shown on focus can be dismissed without moving focus).
// The tooltips are the theme's Bootstrap ones, hidden through Bootstrap's own API.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape" || !window.bootstrap || !window.bootstrap.Tooltip) return;
  for (const el of document.querySelectorAll('[data-bs-toggle="tooltip"]')) {
    const tip = window.bootstrap.Tooltip.getInstance(el);
    if (tip) tip.hide();
  }
});
