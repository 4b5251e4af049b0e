// The counter's cart: a live total and balance after, Enter in a quantity moves on instead of
// checking out, and a filter for long shelves. The page works without it (the server computes
// the same figures when it shows the cart again).
(function () {
  var form = document.getElementById("cart");
  if (!form) return;
  var quantities = form.querySelectorAll("input[name^='qty-']");
  var balance = Number(document.getElementById("balance").dataset.points);

  function points(hundredths) {
    var sign = hundredths < 0 ? "-" : "";
    var text = (Math.abs(hundredths) / 100).toFixed(2).replace(/\.?0+$/, "");
    return sign + text;
  }

  function update() {
    var total = 0;
    quantities.forEach(function (input) {
      var n = parseInt(input.value, 10);
      if (!input.disabled && n > 0) total += n * Number(input.dataset.price);
    });
    document.getElementById("total").textContent = points(total);
    var after = document.getElementById("after");
    after.textContent = points(balance - total);
    after.classList.toggle("negative", balance - total < 0);
  }

  quantities.forEach(function (input, index) {
    input.addEventListener("input", update);
    input.addEventListener("focus", function () { input.select(); });
    input.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") return;
      event.preventDefault(); // Enter never checks out: only the button does
      for (var next = index + 1; next < quantities.length; next++) {
        if (!quantities[next].disabled && !quantities[next].closest("tr").hidden) {
          quantities[next].focus();
          quantities[next].select();
          return;
        }
      }
      document.getElementById("confirm").focus();
    });
  });

  var filter = document.getElementById("goods-filter");
  if (filter) {
    filter.addEventListener("keydown", function (event) {
      if (event.key === "Enter") event.preventDefault();
    });
    filter.addEventListener("input", function () {
      var words = filter.value.trim().toLowerCase();
      form.querySelectorAll("tbody tr[data-name]").forEach(function (row) {
        row.hidden = words !== "" && row.dataset.name.toLowerCase().indexOf(words) === -1;
      });
    });
  }
  update();
})();
