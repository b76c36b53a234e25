/* grid: GET /availability/grid, the day grid of the rooms (docs/api.md#day-grid).  No SQL here
 * (repo_grid.h). */
#ifndef RES_GRID_H
#define RES_GRID_H

#include "http.h"

void res_handle_grid(struct req *r);

#endif
