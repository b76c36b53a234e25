/* report: GET /reports/utilisation, the utilisation report for admins
 * (docs/api.md#utilisation-report), as JSON or as CSV (Accept: text/csv).  No SQL here
 * (repo_report.h). */
#ifndef RES_REPORT_H
#define RES_REPORT_H

#include "http.h"

void res_handle_utilisation(struct req *r);

#endif
