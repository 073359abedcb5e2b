"""The report: decisions and sentences (claims), the blog's comparison, the figures and the HTML page
(pages renders every page of parbench from templates/), and the provenance of a sweep's records."""
