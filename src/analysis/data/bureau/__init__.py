r"""Bureau files into the canonical tables: Chinese headers, units, Excel quirks.

The statistics bureau sends a village table and the organisation department a list of
first secretaries, in the formats those offices use: XLSX or CSV in UTF-8, GBK or
GB18030 (read by :mod:`analysis.data.readers`), Chinese headers over one or two rows
under a title, units in the headers, subtotal rows, full-width digits, missing markers.
:func:`read_bureau` turns such a file into canonical columns
(:mod:`analysis.data.schema`) and lists every problem it finds; the ingest then
validates the values like a canonical file (:mod:`analysis.data.validate`) and writes
the store. Nothing here writes anything. Every rule applied is noted in the ingest
report. The steps, one module each:

:mod:`~analysis.data.bureau.mappings`
    the analysts' YAML mappings of ``data/mappings/`` (aliases of every canonical
    column, accepted words, unit factors);
:mod:`~analysis.data.bureau.header`
    header detection: the header row, group headers above it, unit rows under it
    (every worksheet whose header can be found is read; sheets without one, a 说明
    sheet, are skipped and named);
:mod:`~analysis.data.bureau.rows`
    empty, total and subtotal (合计/总计/小计/全县..., in any leading text column) and
    footnote rows dropped;
:mod:`~analysis.data.bureau.text`
    NFKC normalisation (``１２３`` -> ``123``) and missing markers (``—``, ``无``, ...);
:mod:`~analysis.data.bureau.convert` and :mod:`~analysis.data.bureau.numbers`
    codes (``.0`` dropped, scientific notation refused unless every digit is kept),
    years (``2023年``), categories (Chinese words), dates (``2023年7月15日``, Excel serial
    numbers; a date without a day is refused), numbers (thousands separators, ``35%``,
    ``12.5万元``, the header's unit);
:mod:`~analysis.data.bureau.postings`
    sending-unit types, batch labels and posting ids of lists of first secretaries;
:mod:`~analysis.data.bureau.table`
    the steps in order, and the columns a file may lack (township and county codes
    from the village code; the year from the file name);
:mod:`~analysis.data.bureau.carry_forward`
    attributes the bureau did not repeat, from the village's latest earlier stored year;
:mod:`~analysis.data.bureau.crosswalk`
    village codes that change (merged, split, new and abolished villages).

Missing values are refused by the canonical checks where a value is required (the keys and
the village name); in the covariates and outcomes they are stored as missing, and the
ingest report lists them (write 0 where a count had none). A formula cell with no saved
value is reported as such, not as an empty cell.
"""

from analysis.data.bureau.mappings import DEFAULT_MAPPING_DIR, MappingError, Mappings, TableMap, load_mappings
from analysis.data.bureau.table import BureauTable, bureau_table, read_bureau

__all__ = [
    "DEFAULT_MAPPING_DIR",
    "BureauTable",
    "MappingError",
    "Mappings",
    "TableMap",
    "bureau_table",
    "load_mappings",
    "read_bureau",
]
