// The console works without this script; it only adds comfort: collapsing the scope tree and
// copying a client secret to the clipboard.
(function () {
  "use strict";

  function setUpTree() {
    var tree = document.querySelector(".console-tree");
    var tools = document.querySelector(".console-tree-tools");
    if (!tree || !tools) return;
    var parents = tree.querySelectorAll("li > ul");
    if (parents.length === 0) return;
    parents.forEach(function (list, index) {
      var item = list.parentElement;
      var node = item.querySelector(".console-tree-node");
      var button = document.createElement("button");
      button.type = "button";
      button.className = "console-toggle";
      button.setAttribute("aria-expanded", "true");
      list.id = list.id || "console-subtree-" + index;
      button.setAttribute("aria-controls", list.id);
      var name = node.querySelector("code").textContent;
      button.setAttribute("aria-label", "Children of " + name);
      button.addEventListener("click", function () {
        var open = button.getAttribute("aria-expanded") === "true";
        button.setAttribute("aria-expanded", open ? "false" : "true");
        list.hidden = open;
      });
      node.insertBefore(button, node.firstChild);
    });
    tools.hidden = false;
    tools.addEventListener("click", function (event) {
      var action = event.target.getAttribute("data-tree");
      if (!action) return;
      tree.querySelectorAll(".console-toggle").forEach(function (button) {
        var open = action === "expand";
        button.setAttribute("aria-expanded", open ? "true" : "false");
        document.getElementById(button.getAttribute("aria-controls")).hidden = !open;
      });
    });
  }

  function setUpCopy() {
    var button = document.querySelector("[data-copy]");
    if (!button || !navigator.clipboard) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    var status = document.querySelector(".console-copied");
    button.parentElement.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.textContent).then(function () {
        status.textContent = "Copied.";
      }, function () {
        status.textContent = "Copying failed: select the secret and copy it by hand.";
      });
    });
  }

  setUpTree();
  setUpCopy();
})();
