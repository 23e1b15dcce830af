// Loss Functions, Live: following a link in a drawer (the chapter list or "On this page" on
// a phone) closes the drawer, so the reader sees the section the link went to.
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("dialog[open] a[href]");
  if (link) link.closest("dialog").close();
});
